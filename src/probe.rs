//! `thumbgen health`: asks a running daemon, so a Docker HEALTHCHECK needs no curl in the image.

use std::process::ExitCode;
use std::time::Duration;

/// Prints the daemon's status; success when healthy or degraded. When `/health` is switched off
/// (HEALTH_CHECK_ENABLED=false), liveness decides.
pub(crate) async fn check(base_url: &str) -> ExitCode {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("unhealthy: cannot create an HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = base_url.trim_end_matches('/');
    let response = match client.get(format!("{base}/health")).send().await {
        Ok(r) => r,
        Err(e) => {
            println!("unreachable: {base}/health: {e}");
            return ExitCode::FAILURE;
        }
    };
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return match client.get(format!("{base}/health/live")).send().await {
            Ok(r) if r.status().is_success() => {
                println!("alive (detailed health is disabled)");
                ExitCode::SUCCESS
            }
            Ok(r) => {
                println!("unhealthy: /health/live answered {}", r.status());
                ExitCode::FAILURE
            }
            Err(e) => {
                println!("unreachable: {base}/health/live: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let code = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let status = body.get("status").and_then(|s| s.as_str()).unwrap_or("unknown").to_owned();
    let mut problems = Vec::new();
    if let Some(checks) = body.get("checks").and_then(|c| c.as_object()) {
        for (name, check) in checks {
            let level = check.get("status").and_then(|s| s.as_str()).unwrap_or("");
            if level != "ok" {
                let message = check.get("message").and_then(|m| m.as_str()).unwrap_or("");
                problems.push(format!("{name}: {level}: {message}"));
            }
        }
    }
    println!("{status}");
    for problem in &problems {
        println!("  {problem}");
    }
    if code.is_success() && (status == "healthy" || status == "degraded") {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
