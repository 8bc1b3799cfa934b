//! The configuration's defaults, derived values and masking.
use super::*;

#[test]
fn defaults_are_valid_and_match_the_contract() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.http_socket_addr().unwrap().to_string(), "127.0.0.1:8501");
    assert_eq!(c.engine(), EngineChoice::Local);
    assert_eq!(c.max_file_size.0, 10 * 1024 * 1024);
}

#[test]
fn the_node_is_named_by_node_name_or_the_host() {
    assert!(!Config::default().node().is_empty());
    let named = Config { node_name: Some(Text(" edge-1 ".into())), ..Config::default() };
    assert_eq!(named.node(), "edge-1");
}

#[test]
fn port_overrides_the_address_port() {
    let c = Config { port: Some(9000), ..Config::default() };
    assert_eq!(c.http_socket_addr().unwrap().port(), 9000);
}

#[test]
fn a_gradio_url_selects_the_gradio_engine() {
    let c = Config { gradio_api_url: Some(Text("http://127.0.0.1:7860".into())), ..Config::default() };
    assert_eq!(c.engine(), EngineChoice::Gradio);
}

#[test]
fn printed_configuration_masks_secrets() {
    let c = Config { hf_token: Some(serde_json::from_str("\"hf_secret_value\"").unwrap()), ..Config::default() };
    let text = c.to_toml();
    assert!(!text.contains("hf_secret_value"));
    assert!(text.contains("hf_token = \"***\""));
}

#[test]
fn a_console_token_is_a_masked_secret_and_must_not_be_short() {
    let token = |t: &str| Some(serde_json::from_str::<Secret>(&format!("\"{t}\"")).unwrap());
    let c = Config { console_token: token("a-long-enough-console-secret"), ..Config::default() };
    c.validate().unwrap();
    assert!(c.to_toml().contains("console_token = \"***\""));
    assert_eq!(c.console_secret(), Some("a-long-enough-console-secret"));
    let blank = Config { console_token: token("  "), ..Config::default() };
    assert_eq!(blank.console_secret(), None);
    let short = Config { console_token: token("hunter2"), ..Config::default() };
    let err = short.validate().unwrap_err().0;
    assert!(err.contains("CONSOLE_TOKEN") && err.contains("16"), "{err}");
}

#[test]
fn bad_formats_are_refused_with_the_accepted_list() {
    let c = Config { allowed_formats: vec!["gif".into()], ..Config::default() };
    let err = c.validate().unwrap_err().0;
    assert!(err.contains("ALLOWED_FORMATS") && err.contains("jpeg"), "{err}");
}
