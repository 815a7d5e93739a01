//! The rollback's optional webhook (`SLACK_WEBHOOK_URL`): a hook never waits on the network,
//! so it starts `ctxopt notify-webhook` detached ([`spawn`]), which posts `{"text": …}`
//! ([`post`], 10 s timeout) and exits.

use std::path::Path;
use std::time::Duration;

/// The environment variable naming the webhook.
pub const URL_ENV: &str = "SLACK_WEBHOOK_URL";

/// Starts `<bin_dir>/ctxopt notify-webhook --url URL --text TEXT` detached (own process group,
/// no stdio); errors are ignored — a notification never costs the hook anything.
pub fn spawn(bin_dir: &Path, url: &str, text: &str) {
    let _ = crate::process::spawn_detached(
        &bin_dir.join("ctxopt"),
        &[
            "notify-webhook".as_ref(),
            "--url".as_ref(),
            url.as_ref(),
            "--text".as_ref(),
            text.as_ref(),
        ],
    );
}

/// Posts `{"text": text}` to `url` (what Slack's incoming webhooks take).
pub fn post(url: &str, text: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(serde_json::json!({ "text": text }).to_string())
        .map(drop)
        .map_err(|err| format!("failed to notify {url}: {err}"))
}
