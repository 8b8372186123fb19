//! Operating the relay: the container health check command and machine-readable logs.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn plaza_health(url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plaza"))
        .args(["health", "--url", url])
        .output()
        .expect("run plaza health")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_command_reports_a_running_relay_and_a_stopped_one() {
    let mut relay = Relay::start().await;
    let base = relay.base.clone();
    let up = tokio::task::spawn_blocking({
        let base = base.clone();
        move || plaza_health(&base)
    })
    .await
    .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(String::from_utf8_lossy(&up.stdout).contains("is healthy"));

    relay.kill();
    let down = tokio::task::spawn_blocking(move || plaza_health(&base))
        .await
        .unwrap();
    assert!(!down.status.success());
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(stderr.contains("does not answer"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_writes_one_object_per_line() {
    let relay = Relay::start_with(&[("PLAZA_LOG_FORMAT", "json")]).await;
    let log = relay.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["timestamp"].is_string(), "{line}");
    }
    assert!(log.contains("\"listening\""), "{log}");
}
