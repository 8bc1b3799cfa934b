//! Server-sent events, parsed incrementally as bytes arrive.
//!
//! Gradio sends `event:` + `data:` blocks on `/call` streams and bare `data:` blocks on
//! `/queue/data`; blocks end with a blank line (LF or CRLF). The stream must be read as it comes:
//! the answer may take minutes while heartbeats keep the connection alive.

/// One event: its name (empty when the block had no `event:` line) and its data text.
#[derive(Debug, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

#[derive(Default)]
pub struct Parser {
    buffer: Vec<u8>,
}

impl Parser {
    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some((end, skip)) = block_end(&self.buffer) {
            let block: Vec<u8> = self.buffer.drain(..end + skip).take(end).collect();
            if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
                events.push(event);
            }
        }
        events
    }
}

/// Position of the first blank line and its length (`\n\n` or `\r\n\r\n`).
fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse_block(block: &str) -> Option<Event> {
    let mut name = String::new();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    (!name.is_empty() || !data.is_empty()).then(|| Event { name, data: data.join("\n") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut p = Parser::default();
        assert!(p.push(b"event: heartbeat\ndata: null\n").is_empty());
        let events = p.push(b"\nevent: complete\r\ndata: [1, 2]\r\n\r\ndata: {\"msg\": \"x\"}\n\n");
        assert_eq!(
            events,
            vec![
                Event { name: "heartbeat".into(), data: "null".into() },
                Event { name: "complete".into(), data: "[1, 2]".into() },
                Event { name: String::new(), data: "{\"msg\": \"x\"}".into() },
            ]
        );
    }
}
