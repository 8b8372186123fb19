//! Admin and moderation through the real HTTP API and the `plaza admin` command: approval and
//! allowlist policies, blocks (domain, subdomain, software) in force on the next request, Mastodon CSV
//! import and export, per-IP and per-instance limits, the audit log, and the token kept out of the logs.

use std::process::Command;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// Runs `plaza admin ARGS` against `relay` with `token`; exit status and standard output.
async fn plaza_admin(relay: &Relay, token: &str, args: &[&str]) -> (bool, String) {
    let base = relay.base.clone();
    let token = token.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_plaza"))
            .arg("admin")
            .args(&args)
            .args(["--url", &base])
            .env("PLAZA_ADMIN_TOKEN", &token)
            .output()
            .expect("run plaza admin")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success() || !stderr.is_empty(),
        "failed silently"
    );
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// `plaza admin ARGS --json`, parsed; panics on failure.
async fn admin_json(relay: &Relay, token: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out) = plaza_admin(relay, token, &all).await;
    assert!(ok, "plaza admin {args:?}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// An admin API call with a JSON body; status and JSON answer.
async fn api(
    relay: &Relay,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/api/v1/admin{path}", relay.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("admin call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn accepted_follow(instance: &Instance, follow: &Value) -> bool {
    instance
        .received_of("Accept")
        .iter()
        .any(|a| a["object"]["id"] == follow["id"])
}

fn rejected_follow(instance: &Instance, follow: &Value) -> bool {
    instance
        .received_of("Reject")
        .iter()
        .any(|a| a["object"]["id"] == follow["id"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_holds_follows_until_an_admin_approves_or_rejects() {
    const TOKEN: &str = "approval-token-5d1e";
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_SUBSCRIPTION_POLICY", "approval"),
    ])
    .await;
    let p = Instance::start(Flavor::Pleroma, &relay).await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let p_follow = p.follow_activity(&relay);
    let m_follow = m.follow_activity(&relay);
    assert_eq!(p.post_as_instance(&p_follow).await.0, StatusCode::ACCEPTED);
    assert_eq!(m.post_as_instance(&m_follow).await.0, StatusCode::ACCEPTED);

    let pending = admin_json(&relay, TOKEN, &["pending"]).await;
    let list = pending["pending"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{pending}");
    let p_pending = list
        .iter()
        .find(|e| e["authority"] == p.authority())
        .unwrap();
    assert_eq!(p_pending["protocol"], "litepub");
    assert_eq!(p_pending["nodeinfo"]["software"], "pleroma", "{p_pending}");
    let (_, table) = plaza_admin(&relay, TOKEN, &["pending"]).await;
    assert!(
        table.starts_with("INSTANCE") && table.contains("pleroma"),
        "{table}"
    );
    assert!(p.received().is_empty(), "nothing is sent while pending");
    let (status, _) = p.post_as_user(&p.public_create("too early")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a pending instance is not subscribed"
    );

    let (ok, out) = plaza_admin(&relay, TOKEN, &["approve", &p.authority()]).await;
    assert!(ok, "{out}");
    eventually("the Accept after approval", || {
        accepted_follow(&p, &p_follow)
    })
    .await;
    eventually("the LitePub follow back", || {
        p.received_of("Follow")
            .iter()
            .any(|f| f["object"] == p.instance_actor())
    })
    .await;

    let (status, _) = api(
        &relay,
        TOKEN,
        Method::POST,
        &format!("/pending/{}/reject", m.authority()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    eventually("the Reject", || rejected_follow(&m, &m_follow)).await;
    assert!(!accepted_follow(&m, &m_follow));
    let (status, _) = api(
        &relay,
        TOKEN,
        Method::POST,
        &format!("/pending/{}/reject", m.authority()),
        None,
    )
    .await;
    assert_eq!(status, 404, "nothing pending any more");

    let subs = admin_json(&relay, TOKEN, &["subscribers"]).await;
    let subs = subs["subscribers"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    let sub = &subs[0];
    assert_eq!(sub["instance"], p.authority());
    assert_eq!(sub["software"], "pleroma");
    assert_eq!(sub["protocol"], "litepub");
    assert!(sub["subscribed_at"].is_i64());
    for field in [
        "last_inbound",
        "behind",
        "last_delivered",
        "consecutive_failures",
        "state",
    ] {
        assert!(sub.get(field).is_some(), "{field} missing: {sub}");
    }

    let (_, table) = plaza_admin(&relay, TOKEN, &["subscribers"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("INSTANCE") && lines[0].contains("LAST DELIVERY"),
        "{table}"
    );
    assert!(
        lines[1].contains(&p.authority()) && lines[1].contains("pleroma"),
        "{table}"
    );

    let audit = admin_json(&relay, TOKEN, &["audit"]).await;
    let actions: Vec<(&str, &str)> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["admin"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("reject", "admin"), ("approve", "admin")]);

    let stats = admin_json(&relay, TOKEN, &["stats"]).await;
    assert_eq!(stats["subscribers"]["active"], 1, "{stats}");
    assert_eq!(stats["subscribers"]["pending"], 0, "{stats}");
    assert!(
        stats["uptime_secs"].is_u64() && stats["log"]["head"].is_u64(),
        "{stats}"
    );

    // Wrong tokens are refused and logged without what was presented; the real one is never logged.
    let (ok, out) = plaza_admin(&relay, "not-the-token-9f3a", &["stats"]).await;
    assert!(!ok && out.contains("401"), "{out}");
    let log = relay.log();
    assert!(
        log.contains("admin request with a missing or wrong token"),
        "{log}"
    );
    assert!(
        !log.contains(TOKEN) && !log.contains("not-the-token-9f3a"),
        "a token reached the log"
    );
    let refused = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/stats", relay.base))
        .bearer_auth("another-wrong-token")
        .header("x-request-id", "trace-me-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-request-id"], "trace-me-4711");
    eventually("the refusal logged with its request id", || {
        relay
            .log()
            .lines()
            .any(|l| l.contains("trace-me-4711") && l.contains("wrong token"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_withdraws_a_follow_waiting_for_approval() {
    const TOKEN: &str = "withdraw-token-90a1";
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_SUBSCRIPTION_POLICY", "approval"),
    ])
    .await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let follow = m.follow_activity(&relay);
    assert_eq!(m.post_as_instance(&follow).await.0, StatusCode::ACCEPTED);
    let pending = |relay: &Relay| {
        let relay = relay.base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{relay}/api/v1/admin/pending"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        pending(&relay).await["pending"].as_array().unwrap().len(),
        1
    );
    // Alice cannot withdraw her instance's Follow.
    let by_alice = json!({"id": format!("{}#undo-1", m.user()), "type": "Undo",
        "actor": m.user(), "object": follow["id"]});
    let (status, body) = m.post_as_user(&by_alice).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("ignored"), "{body}");
    assert_eq!(
        pending(&relay).await["pending"].as_array().unwrap().len(),
        1
    );
    // The instance actor can.
    let undo = json!({"id": format!("{}#undo", follow["id"].as_str().unwrap()), "type": "Undo",
        "actor": m.instance_actor(), "object": follow});
    let (status, body) = m.post_as_instance(&undo).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("withdrawn"), "{body}");
    assert_eq!(pending(&relay).await["pending"], json!([]));
    let (status, _) = api(
        &relay,
        TOKEN,
        Method::POST,
        &format!("/pending/{}/approve", m.authority()),
        None,
    )
    .await;
    assert_eq!(status, 404, "nothing left to approve");
    assert!(m.received_of("Accept").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_admits_listed_instances_and_the_policy_changes_at_run_time() {
    const TOKEN: &str = "allow-token-77c2";
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_SUBSCRIPTION_POLICY", "allowlist"),
        ("PLAZA_ALLOWLIST", "coop.example"),
    ])
    .await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let follow = a.follow_activity(&relay);
    assert_eq!(a.post_as_instance(&follow).await.0, StatusCode::ACCEPTED);
    eventually("a Reject for an unlisted instance", || {
        rejected_follow(&a, &follow)
    })
    .await;

    let (ok, out) = plaza_admin(
        &relay,
        TOKEN,
        &[
            "policy",
            "allowlist",
            "--allow",
            &format!("coop.example,{}", a.addr.ip()),
        ],
    )
    .await;
    assert!(ok && out.contains(&a.addr.ip().to_string()), "{out}");
    a.subscribe(&relay).await;

    let b = Instance::start(Flavor::GoToSocial, &relay).await;
    let b_follow = b.follow_activity(&relay);
    b.post_as_instance(&b_follow).await;
    eventually("b refused", || rejected_follow(&b, &b_follow)).await;
    let policy = admin_json(&relay, TOKEN, &["policy", "open"]).await;
    assert_eq!(policy["policy"], "open");
    b.subscribe(&relay).await;
    // The policy set at run time outlives a restart (it wins over the configuration).
    let mut relay = relay;
    relay.kill_and_restart().await;
    let kept = admin_json(&relay, TOKEN, &["policy"]).await;
    assert_eq!(kept["policy"], "open", "{kept}");
    assert_eq!(kept["allowlist"].as_array().unwrap().len(), 2, "{kept}");
    let audit = admin_json(&relay, TOKEN, &["audit"]).await;
    let entries: Vec<(&str, &str, &str)> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let reason = e["detail"]["reason"].as_str().unwrap_or_default();
            (
                e["admin"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                reason,
            )
        })
        .collect();
    // Newest first: the two policy changes, and each refusal with the reason its Reject gave.
    let refused = ("relay", "reject", "this relay only admits listed instances");
    assert_eq!(
        entries,
        [
            ("admin", "set-policy", ""),
            refused,
            ("admin", "set-policy", ""),
            refused
        ],
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_take_effect_on_the_next_request_by_domain_subdomain_and_software() {
    const TOKEN: &str = "mod-token-a81b";
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKENS", &format!("mod={TOKEN}"))]).await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let b = Instance::start(Flavor::GoToSocial, &relay).await;
    let p = Instance::start(Flavor::Pleroma, &relay).await;
    for i in [&a, &b, &p] {
        i.subscribe(&relay).await;
    }

    // a is down with a delivery waiting for it when the block comes.
    a.down().await;
    let waiting = b.public_create("waiting for a");
    let waiting_note = waiting["object"]["id"].as_str().unwrap().to_string();
    assert_eq!(b.post_as_user(&waiting).await.0, StatusCode::ACCEPTED);
    eventually("p gets the post a waits for", || {
        p.got_object(&waiting_note)
    })
    .await;

    let a_host = a.addr.ip().to_string();
    let (ok, out) = plaza_admin(
        &relay,
        TOKEN,
        &["block", &a_host, "--reason", "spam wave", "--purge"],
    )
    .await;
    assert!(ok && out.contains("subscriptions ended: 1"), "{out}");
    let (status, body) = a.post_as_user(&a.public_create("after the block")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("blocked"), "{body}");
    assert!(
        relay.metrics().await.contains("plaza_delivery_workers 2\n"),
        "the blocked instance's delivery worker stopped"
    );
    a.up().await;
    let received_before = a.received().len();
    let create = b.public_create("while a is blocked");
    let note = create["object"]["id"].as_str().unwrap().to_string();
    assert_eq!(b.post_as_user(&create).await.0, StatusCode::ACCEPTED);
    eventually("p gets b's post", || p.got_object(&note)).await;
    // Every remaining subscriber's delivery cursor is past b's post: it has been handed to everyone it
    // was going to.
    relay.until_caught_up("plaza_subscriber_lag_entries").await;
    assert_eq!(
        a.received().len(),
        received_before,
        "a blocked instance receives nothing"
    );
    assert!(
        !a.got_object(&waiting_note),
        "its pending deliveries were dropped"
    );
    let follow = a.follow_activity(&relay);
    assert_eq!(
        a.post_as_instance(&follow).await.0,
        StatusCode::FORBIDDEN,
        "a block is sticky"
    );

    // A subdomain of a blocked domain is refused before any fetch or signature check.
    api(
        &relay,
        TOKEN,
        Method::POST,
        "/blocks",
        Some(json!({"domain": "spam.example", "reason": "spam"})),
    )
    .await;
    let actor = "http://social.spam.example/users/x";
    let activity = json!({"id": format!("{actor}/1"), "type": "Create", "actor": actor,
        "object": {"id": format!("{actor}/n/1"), "type": "Note", "to": [PUBLIC]}, "to": [PUBLIC]});
    let body = serde_json::to_vec(&activity).unwrap();
    let keys = Keys::generate();
    let headers = signed_post_headers(
        Flavor::Mastodon,
        &keys,
        &format!("{actor}#main-key"),
        &relay.inbox(),
        &body,
        SystemTime::now(),
    );
    let (status, text) = post_raw(&relay.base, headers, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("social.spam.example"), "{text}");

    // By software: the Pleroma instance runs "pleroma" according to its NodeInfo.
    let blocked = admin_json(
        &relay,
        TOKEN,
        &["block", "pleroma", "--software", "--reason", "no pleromas"],
    )
    .await;
    assert_eq!(blocked["ended"], json!([p.authority()]), "{blocked}");
    let (status, _) = p
        .post_as_user(&p.public_create("after the software block"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let subs = relay.admin_subscribers(TOKEN).await;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["instance"], b.authority());

    let blocks = admin_json(&relay, TOKEN, &["blocks"]).await;
    let a_block = blocks["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["domain"] == a_host.as_str())
        .unwrap()
        .clone();
    assert_eq!(a_block["reason"], "spam wave");
    assert_eq!(a_block["purge"], true);
    assert_eq!(a_block["created_by"], "mod");
    assert!(a_block["created_at"].as_i64().unwrap() > 0);
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("plaza_blocks{kind=\"domain\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("plaza_blocks{kind=\"software\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("plaza_inbound_refused_total{reason=\"blocked\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "plaza_subscriber_lag{{instance=\"{}\"}}",
            b.authority()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("plaza_subscriptions_pending 0"),
        "{metrics}"
    );

    // Lifted, the instance may subscribe again.
    let (ok, out) = plaza_admin(&relay, TOKEN, &["unblock", &a_host]).await;
    assert!(ok, "{out}");
    a.subscribe(&relay).await;
    let audit = admin_json(&relay, TOKEN, &["audit"]).await;
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unblock", "block", "block", "block"]);
    assert!(!relay.log().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastodon_block_lists_round_trip_through_the_cli() {
    const TOKEN: &str = "csv-token-31aa";
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("domain_blocks.csv");
    let mastodon = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n\
                    loud.example,silence,false,false,Too loud,true\n\
                    spam.example,suspend,true,true,\"Spam, and more spam\",false\n";
    std::fs::write(&input, mastodon).unwrap();
    let (ok, out) = plaza_admin(&relay, TOKEN, &["import-blocks", input.to_str().unwrap()]).await;
    assert!(ok && out.contains("imported 2 blocks"), "{out}");
    let output = dir.path().join("export.csv");
    let (ok, out) = plaza_admin(&relay, TOKEN, &["export-blocks", output.to_str().unwrap()]).await;
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), mastodon);
    let (_, table) = plaza_admin(&relay, TOKEN, &["blocks"]).await;
    assert!(
        table.contains("spam.example") && table.contains("silence"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_reads_are_limited_per_client_ip_and_recover() {
    let relay = Relay::start_with(&[
        ("PLAZA_CLIENT_IP_RATE", "4"),
        ("PLAZA_CLIENT_IP_BURST", "3"),
        ("PLAZA_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let client = reqwest::Client::new();
    let get = async |forwarded: Option<&str>| {
        let mut request = client.get(relay.actor_id());
        if let Some(ip) = forwarded {
            request = request.header("x-forwarded-for", ip);
        }
        request.send().await.unwrap()
    };
    for _ in 0..3 {
        assert_eq!(get(None).await.status(), 200);
    }
    let refused = get(None).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(refused.headers().contains_key("x-request-id"));
    let health = client
        .get(format!("{}/healthz", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the health check is not limited");
    assert_eq!(
        get(Some("203.0.113.9")).await.status(),
        200,
        "behind a trusted proxy each client has its own allowance"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(None).await.status(), 200, "the allowance refills");
    let metrics = client
        .get(format!("{}/metrics", relay.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("plaza_rate_limited_total{limit=\"client_ip\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_admin_tokens_is_limited_like_public_reads() {
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", "guess-me-not-1f0e"),
        ("PLAZA_CLIENT_IP_RATE", "1"),
        ("PLAZA_CLIENT_IP_BURST", "3"),
    ])
    .await;
    let mut statuses = Vec::new();
    for n in 0..5 {
        let (status, _) = api(&relay, &format!("guess-{n}"), Method::GET, "/stats", None).await;
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    let (status, _) = api(&relay, "guess-me-not-1f0e", Method::GET, "/stats", None).await;
    assert_eq!(status, 200, "the right token is not limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_limit_override_replaces_the_default() {
    const TOKEN: &str = "limit-token-0c4d";
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_INBOUND_RATE_PER_INSTANCE", "1"),
        ("PLAZA_INBOUND_BURST_PER_INSTANCE", "2"),
    ])
    .await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    a.subscribe(&relay).await;
    let (ok, out) = plaza_admin(
        &relay,
        TOKEN,
        &[
            "limits",
            "--set",
            &a.authority(),
            "--rate",
            "100",
            "--burst",
            "50",
        ],
    )
    .await;
    assert!(ok, "{out}");
    for n in 0..8 {
        let (status, body) = a
            .post_as_user(&a.public_create(&format!("burst {n}")))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "post {n}: {body}");
    }
    let limits = admin_json(&relay, TOKEN, &["limits"]).await;
    assert_eq!(limits["overrides"][0]["burst"], 50, "{limits}");
    let (ok, out) = plaza_admin(&relay, TOKEN, &["limits", "--clear", &a.authority()]).await;
    assert!(ok, "{out}");
    let mut statuses = Vec::new();
    for n in 0..4 {
        statuses.push(
            a.post_as_user(&a.public_create(&format!("again {n}")))
                .await
                .0,
        );
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let audit = admin_json(&relay, TOKEN, &["audit"]).await;
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["clear-limit", "set-limit"]);
}

/// Whether the public timeline holds a post whose content contains `needle`; asks again while the
/// relay answers anything but 200 (the per-IP read budget).
async fn timeline_mentions(relay: &Relay, needle: &str) -> bool {
    let url = format!("{}/api/v1/timelines/public?limit=40", relay.base);
    let started = std::time::Instant::now();
    loop {
        let response = reqwest::get(&url).await.expect("timeline request");
        if response.status() == StatusCode::OK {
            let body: Value = response.json().await.expect("timeline JSON");
            return body.as_array().is_some_and(|posts| {
                posts
                    .iter()
                    .any(|p| p["content"].as_str().is_some_and(|c| c.contains(needle)))
            });
        }
        assert!(started.elapsed() < PATIENCE, "the timeline kept failing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_with_purge_removes_the_instance_from_the_index_and_one_without_does_not() {
    const TOKEN: &str = "purge-token-5c2e";
    // Departed instances stay in the index: only the block's own flag purges.
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKENS", &format!("mod={TOKEN}")),
        ("PLAZA_PURGE_ON_UNSUBSCRIBE", "false"),
    ])
    .await;
    let purged = Instance::start(Flavor::Mastodon, &relay).await;
    let kept = Instance::start(Flavor::Mastodon, &relay).await;
    for (instance, text) in [(&purged, "purged sourdough"), (&kept, "kept sourdough")] {
        instance.set_user_fields(json!({ "indexable": true, "discoverable": true }));
        instance.subscribe(&relay).await;
        let (status, body) = instance.post_as_user(&instance.public_create(text)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    for text in ["purged sourdough", "kept sourdough"] {
        let started = std::time::Instant::now();
        while !timeline_mentions(&relay, text).await {
            assert!(
                started.elapsed() < PATIENCE,
                "{text:?} was not indexed; log: {}",
                relay.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    for (instance, purge) in [(&purged, true), (&kept, false)] {
        let (status, body) = api(
            &relay,
            TOKEN,
            Method::POST,
            "/blocks",
            Some(json!({ "domain": instance.addr.ip().to_string(), "reason": "test", "purge": purge })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["block"]["purge"], purge);
    }
    let started = std::time::Instant::now();
    while timeline_mentions(&relay, "purged sourdough").await {
        assert!(
            started.elapsed() < PATIENCE,
            "the purged instance's post is still searchable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        timeline_mentions(&relay, "kept sourdough").await,
        "a block without purge leaves the index alone"
    );
}
