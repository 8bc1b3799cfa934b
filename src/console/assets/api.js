// The console's API: JSON requests, and uploads with progress.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function parse(response) {
  if (response.status === 401) {
    window.location.assign("login");
    throw new ApiError(401, { error: "logged out" });
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text };
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function getJSON(url) {
  return parse(await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }));
}

export async function send(method, url) {
  return parse(await fetch(url, { method, credentials: "same-origin" }));
}

// Uploads one file; onProgress(fraction) while it goes. Resolves with the answer's JSON, rejects
// with an ApiError (status 0 when the connection broke).
export function upload(file, folder, replace, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const query = new URLSearchParams({ folder });
    if (replace) query.set("replace", "true");
    xhr.open("POST", `api/upload?${query}`);
    xhr.withCredentials = true;
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = { error: xhr.responseText };
      }
      if (xhr.status === 201) resolve(body);
      else {
        const error = new ApiError(xhr.status, body);
        error.retryAfter = Number(xhr.getResponseHeader("Retry-After")) || 0;
        reject(error);
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { error: "the connection broke" })));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
