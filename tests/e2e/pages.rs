//! The web pages, end to end: the real relay with subscribed simulated instances whose consenting
//! authors' posts and profiles are in its index, read over HTTP and driven in headless Chromium through
//! WebDriver (Debian's `chromium` and `chromium-driver`; `.ci/run` installs them). Without Chromium the
//! browser test fails and says what to install: it never passes silently.
//!
//! The index is filled before the relay starts, through `plaza-index` itself with the instances' own
//! actor and note documents (the indexer's path from the inbox is tested with the indexer); what is
//! tested here is everything a visitor sees.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::{Client, ClientBuilder, Locator};
use plaza_index::{Index, IndexConfig};
use serde_json::{Value, json};

use crate::support::{Flavor, Instance, PATIENCE, PUBLIC, Relay};

/// An 8×8 PNG, served as the organisations' avatar by their instance.
const AVATAR_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGPgzo7AihiGlgQADLQzgf/s81EAAAAASUVORK5CYII=";

/// The post that tries to run script three ways.
const HOSTILE_HTML: &str = "<p>Hostile bakery post <script>document.title='pwned-script'</script>\
    <img src=\"x\" onerror=\"document.title='pwned-onerror'\"> \
    <a href=\"javascript:document.title='pwned-link'\">click me</a></p>";

fn actor(instance: &Instance, name: &str, kind: &str, display: &str, bio: &str) -> Value {
    let id = format!("{}/users/{name}", instance.base);
    json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id,
        "type": kind,
        "preferredUsername": name,
        "name": display,
        "summary": bio,
        "url": format!("{}/@{name}", instance.base),
        "inbox": format!("{id}/inbox"),
        "indexable": true,
        "discoverable": true,
        "published": "2021-05-01T00:00:00Z",
        "icon": {"type": "Image", "mediaType": "image/png", "url": format!("{}/avatars/{name}.png", instance.base)},
    })
}

fn note(author: &Value, n: usize, html: &str, lang: &str, tags: &[&str], published: &str) -> Value {
    let author_id = author["id"].as_str().expect("author id");
    json!({
        "id": format!("{author_id}/statuses/{n}"),
        "type": "Note",
        "attributedTo": author_id,
        "content": html,
        "contentMap": { lang: html },
        "to": [PUBLIC],
        "cc": [format!("{author_id}/followers")],
        "published": published,
        "url": format!("{author_id}/posts/{n}"),
        "tag": tags.iter().map(|t| json!({"type": "Hashtag", "name": format!("#{t}")})).collect::<Vec<_>>(),
    })
}

/// A relay with two subscribed Mastodon-style instances and, in its index, their consenting authors'
/// profiles and posts: an organisation and a group tagged #coop, a person, and a hostile author.
struct World {
    relay: Relay,
    bakers_instance: Arc<Instance>,
    riders_instance: Arc<Instance>,
}

async fn world(env: &[(&str, &str)]) -> World {
    // The tests read many pages quickly from one address: no per-IP limit here.
    let mut env = env.to_vec();
    env.push(("PLAZA_CLIENT_IP_RATE", "0"));
    let mut relay = Relay::start_with(&env).await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let b = Instance::start(Flavor::Mastodon, &relay).await;
    // Each instance describes itself with NodeInfo, which the relay's indexer reads when it subscribes.
    for (instance, name, users, open) in [
        (&a, "Bakery Town", 120, true),
        (&b, "Riders Social", 45, false),
    ] {
        instance.host_at(
            "/.well-known/nodeinfo",
            json!({ "links": [{ "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": format!("{}/nodeinfo/2.1", instance.base) }] }),
        );
        instance.host_at(
            "/nodeinfo/2.1",
            json!({
                "version": "2.1",
                "software": {"name": "mastodon", "version": "4.4.0"},
                "openRegistrations": open,
                "usage": {"users": {"total": users}},
                "metadata": {"nodeName": name, "nodeDescription": format!("{name}: a small instance")},
            }),
        );
    }
    a.subscribe(&relay).await;
    b.subscribe(&relay).await;
    // Until the indexer has read (and committed) both, the relay must keep running.
    page_with(&format!("{}/instances", relay.base), "Bakery Town").await;
    page_with(&format!("{}/instances", relay.base), "Riders Social").await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(AVATAR_PNG)
        .expect("png");
    for (instance, name) in [
        (&a, "bakers"),
        (&a, "carol"),
        (&b, "riders"),
        (&b, "mallory"),
    ] {
        instance.host_raw(&format!("/avatars/{name}.png"), "image/png", png.clone());
    }
    let bakers = actor(
        &a,
        "bakers",
        "Organization",
        "Bakers' Co-op",
        "<p>A worker-owned bakery in Lyon. <a href=\"https://example.org/tags/coop\" class=\"hashtag\">#<span>coop</span></a></p>",
    );
    let mut bakers = bakers;
    bakers["tag"] = json!([{"type": "Hashtag", "name": "#coop"}]);
    bakers["attachment"] = json!([
        {"type": "PropertyValue", "name": "Sector", "value": "Food"},
        {"type": "PropertyValue", "name": "Website", "value": "<a href=\"https://bakers.example\">bakers.example</a>"}
    ]);
    let carol = actor(&a, "carol", "Person", "Carol", "<p>I knit and bake.</p>");
    let mut riders = actor(
        &b,
        "riders",
        "Group",
        "Riders Collective",
        "<p>Fahrradkurier-Kooperative. #coop #platformcoop</p>",
    );
    riders["tag"] =
        json!([{"type": "Hashtag", "name": "#coop"}, {"type": "Hashtag", "name": "#platformcoop"}]);
    let mallory = actor(
        &b,
        "mallory",
        "Person",
        "<script>document.title='pwned-name'</script>Mallory",
        "<p>Bio <img src=x onerror=\"document.title='pwned-bio'\"></p>",
    );

    // The relay holds the index's writer lock: fill it while the relay is stopped.
    relay.kill();
    {
        let index = Index::open(&relay.data_dir.join("index"), IndexConfig::default())
            .expect("open the relay's index");
        for person in [&bakers, &carol, &riders, &mallory] {
            index.upsert_actor(person).expect("actor");
        }
        let posts = [
            (
                &bakers,
                &a,
                note(
                    &bakers,
                    1,
                    "<p>Our worker-owned bakery opens a second shop: fresh sourdough every morning! <a href=\"https://example.org/tags/coop\">#coop</a></p>",
                    "en",
                    &["coop"],
                    "2026-11-20T09:00:00Z",
                ),
            ),
            (
                &riders,
                &b,
                note(
                    &riders,
                    1,
                    "<p>Die Fahrradkurier-Kooperative sucht neue Mitglieder. #coop</p>",
                    "de",
                    &["coop", "platformcoop"],
                    "2026-11-21T09:00:00Z",
                ),
            ),
            (
                &mallory,
                &b,
                note(
                    &mallory,
                    1,
                    HOSTILE_HTML,
                    "en",
                    &["inert"],
                    "2026-11-22T09:00:00Z",
                ),
            ),
        ];
        for (author, instance, post) in &posts {
            let verdict = index
                .add_post(post, author, &instance.authority())
                .expect("add post");
            assert!(verdict.allowed(), "{verdict:?}");
        }
        // Enough of carol's posts for a second page of results.
        for n in 1..=22 {
            let post = note(
                &carol,
                n,
                &format!("<p>Bakery diary, day {n}: rye and spelt.</p>"),
                "en",
                &[],
                &format!("2026-11-{:02}T08:00:00Z", (n % 28) + 1),
            );
            assert!(
                index
                    .add_post(&post, &carol, &a.authority())
                    .expect("add")
                    .allowed()
            );
        }
        index.commit().expect("commit");
    }
    relay.start_again().await;
    World {
        relay,
        bakers_instance: a,
        riders_instance: b,
    }
}

/// The page at `url` once it contains `needle` (what the relay learns in the background).
async fn page_with(url: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let (_, _, body) = page(url).await;
        if body.contains(needle) {
            return body;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{url} never showed {needle}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many searches the relay has run (`plaza_search_duration_seconds_count` of `/metrics`).
async fn searches_run(base: &str) -> u64 {
    let metrics = get(&format!("{base}/metrics")).await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("plaza_search_duration_seconds_count "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no search count in {metrics}"))
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).send().await.expect("GET")
}

async fn page(url: &str) -> (reqwest::StatusCode, reqwest::header::HeaderMap, String) {
    let response = get(url).await;
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

#[tokio::test]
async fn pages_answer_with_strict_headers_feeds_and_clear_messages() {
    let w = world(&[
        ("PLAZA_ADMIN_CONTACT", "admin@relay.test"),
        ("PLAZA_RELAY_NAME", "Test Plaza"),
    ])
    .await;
    let base = &w.relay.base;

    let (status, headers, home) = page(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("script-src 'none'")
            && csp.contains("img-src 'self'"),
        "{csp}"
    );
    assert!(home.contains("<html lang=\"en\">"), "{home}");
    assert!(
        home.contains(&format!("<code>{base}/inbox</code>")),
        "{home}"
    );
    assert!(
        home.contains(&format!("<code>{base}/actor</code>")),
        "{home}"
    );
    assert!(
        home.contains("<dt>Instances subscribed</dt><dd>2</dd>"),
        "{home}"
    );
    assert!(home.contains("<dt>Posts indexed</dt><dd>25</dd>"), "{home}");
    assert!(home.contains("href=\"/opensearch.xml\""), "{home}");
    assert!(!home.contains("<script"), "no page carries script: {home}");

    // Every page links the OpenSearch description; search and tag pages their feeds.
    let (_, _, search) = page(&format!("{base}/search?q=bakery")).await;
    assert!(search.contains("rel=\"search\" type=\"application/opensearchdescription+xml\""));
    assert!(
        search.contains("<link rel=\"alternate\" type=\"application/atom+xml\""),
        "{search}"
    );
    assert!(
        search.contains("href=\"/search.atom?q=bakery\""),
        "{search}"
    );
    assert!(
        search.contains("value=\"bakery\""),
        "the query is echoed: {search}"
    );
    assert!(search.contains("<mark>"), "highlighted: {search}");
    assert!(
        search.contains("rel=\"next\" href=\"/search?q=bakery&#38;sort=relevance&#38;page=2\""),
        "{search}"
    );
    let (_, _, sourdough) = page(&format!("{base}/search?q=sourdough")).await;
    assert!(
        sourdough.contains(&format!(
            "href=\"{}/users/bakers/posts/1\"",
            w.bakers_instance.base
        )),
        "link to the original: {sourdough}"
    );
    assert!(
        sourdough.contains("<a class=\"name\" href=\"") && sourdough.contains("Bakers&#39; Co-op"),
        "author: {sourdough}"
    );

    // A post that arrives through the inbox now, by an author who opted in, is found by the pages.
    let home = &w.bakers_instance;
    home.set_user_fields(json!({ "indexable": true, "discoverable": true }));
    let create = home.public_create("Pumpkin loaves from the cooperative oven");
    let (status, body) = home.post_as_user(&create).await;
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    loop {
        let (_, _, found) = page(&format!("{base}/search?q=pumpkin")).await;
        if found.contains("1 post found") {
            assert!(found.contains("<mark>Pumpkin</mark> loaves"), "{found}");
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the relayed post never became searchable: {found}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A malformed query: 400 and the parser's reason on the page.
    let (status, _, bad) = page(&format!("{base}/search?q=%22unclosed")).await;
    assert_eq!(status, 400);
    assert!(bad.contains("This query cannot be searched"), "{bad}");
    assert!(bad.contains("role=\"alert\""), "{bad}");
    // No results: said so.
    let (status, _, none) = page(&format!("{base}/search?q=zeppelin")).await;
    assert_eq!(status, 200);
    assert!(none.contains("No posts match “zeppelin”"), "{none}");

    // The Atom feed of a search and of a hashtag.
    let feed = get(&format!("{base}/search.atom?q=sourdough")).await;
    assert_eq!(
        feed.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let feed = feed.text().await.unwrap();
    assert!(
        feed.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""),
        "{feed}"
    );
    assert!(
        feed.contains(&format!(
            "<id>{}/users/bakers/statuses/1</id>",
            w.bakers_instance.base
        )),
        "{feed}"
    );
    let searches_before = searches_run(base).await;
    let (status, _, tag_feed) = page(&format!("{base}/tags/coop.atom")).await;
    assert_eq!(status, 200);
    assert_eq!(tag_feed.matches("<entry").count(), 2, "{tag_feed}");
    for author in ["bakers", "riders"] {
        assert!(
            tag_feed.contains(&format!("/users/{author}/statuses/1</id>")),
            "{author}'s #coop post: {tag_feed}"
        );
    }
    assert!(!tag_feed.contains("/users/mallory/"), "{tag_feed}");
    assert_eq!(
        searches_run(base).await - searches_before,
        1,
        "the feed runs the timeline search only"
    );
    let (_, headers, opensearch) = page(&format!("{base}/opensearch.xml")).await;
    assert_eq!(
        headers["content-type"],
        "application/opensearchdescription+xml; charset=utf-8"
    );
    assert!(
        opensearch.contains(&format!("template=\"{base}/search?q={{searchTerms}}\"")),
        "{opensearch}"
    );

    // The stylesheet, cacheable.
    let css = get(&format!("{base}/static/plaza.css")).await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );

    // Instances from NodeInfo, with since when they are subscribed; about with the admin contact.
    page_with(&format!("{base}/instances"), "Bakery Town").await;
    let instances = page_with(&format!("{base}/instances"), "Riders Social").await;
    assert!(instances.contains("mastodon 4.4.0"), "{instances}");
    assert!(
        instances.contains("<dt>Registrations</dt><dd>open</dd>"),
        "{instances}"
    );
    assert!(instances.contains("Subscribed since"), "{instances}");
    let (_, _, about) = page(&format!("{base}/about")).await;
    assert!(
        about.contains("<a href=\"mailto:admin@relay.test\">admin@relay.test</a>"),
        "{about}"
    );
    assert!(about.contains("id=\"opt-out\""), "{about}");
    assert!(
        about.contains("Posts older than 365 days are dropped"),
        "{about}"
    );
    assert!(
        about.contains("what was indexed from your instance is removed"),
        "{about}"
    );

    // Unknown tags and pages: a page for a browser, JSON for a program.
    let (status, _, _) = page(&format!("{base}/tags/%20")).await;
    assert_eq!(status, 404);
    let browser_404 = reqwest::Client::new()
        .get(format!("{base}/no/such/page"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(browser_404.status(), 404);
    assert!(
        browser_404
            .text()
            .await
            .unwrap()
            .contains("<h1>Not found</h1>")
    );
    let program_404 = get(&format!("{base}/no/such/page")).await;
    assert_eq!(program_404.status(), 404);
    assert!(program_404.text().await.unwrap().starts_with("{\"error\""));

    // The avatar proxy serves only what the relay signed.
    let directory = page(&format!("{base}/directory?type=organization")).await.2;
    let src = directory
        .split("class=\"avatar\" src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an avatar")
        .replace("&#38;", "&");
    assert!(src.starts_with("/media/proxy?url="), "{src}");
    let image = get(&format!("{base}{src}")).await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    let forged = src.replace("bakers.png", "carol.png");
    assert_eq!(get(&format!("{base}{forged}")).await.status(), 400);
    drop(w.riders_instance);
}

#[tokio::test]
async fn the_search_command_prints_what_a_running_relay_finds() {
    let w = world(&[]).await;
    let out = w
        .relay
        .command(&["search", "sourdough", "--url", &w.relay.base]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Posts (1)"), "{stdout}");
    let author = format!("@bakers@{}", w.bakers_instance.authority());
    assert!(stdout.contains(&author), "{stdout}");
    assert!(
        stdout.contains("opens a second shop: fresh sourdough"),
        "{stdout}"
    );

    // Profiles only, as JSON; the configured address is used without --url.
    let out = w
        .relay
        .command(&["search", "Riders", "--type", "accounts", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        answer["accounts"][0]["display_name"], "Riders Collective",
        "{answer}"
    );
    assert_eq!(answer["statuses"], json!([]), "{answer}");

    // A malformed query fails with the relay's reason.
    let out = w
        .relay
        .command(&["search", "\"unclosed", "--url", &w.relay.base]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("quote"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_hostile_post_renders_inert() {
    let w = world(&[]).await;
    let base = &w.relay.base;
    for path in [
        "/tags/inert",
        "/search?q=hostile",
        "/",
        "/directory?q=mallory",
    ] {
        let (status, _, html) = page(&format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains("Mallory") || html.contains("Hostile"),
            "{path}: {html}"
        );
        for bad in ["<script", "onerror", "javascript:", "pwned-"] {
            // The hostile strings may only appear escaped as text (`&#60;script`), never as markup.
            let raw = html.replace(
                "&#60;script&#62;document.title=&#39;pwned-name&#39;&#60;/script&#62;",
                "",
            );
            assert!(!raw.contains(bad), "{path} carries {bad}: {raw}");
        }
    }
    let (_, _, tag) = page(&format!("{base}/tags/inert")).await;
    assert!(tag.contains("Hostile bakery post"), "{tag}");
    assert!(
        tag.contains("click me"),
        "the link text stays, without its script: {tag}"
    );
}

#[tokio::test]
async fn without_the_index_the_pages_say_search_is_off() {
    let relay = Relay::start_with(&[("PLAZA_INDEX_ENABLED", "false")]).await;
    let base = &relay.base;
    let (status, _, home) = page(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(
        home.contains("<dt>Instances subscribed</dt><dd>0</dd>"),
        "{home}"
    );
    assert!(!home.contains("Posts indexed"), "{home}");
    let (status, _, search) = page(&format!("{base}/search?q=bakery")).await;
    assert_eq!(status, 503);
    assert!(
        search.contains("Search is turned off on this relay."),
        "{search}"
    );
    let (status, _, directory) = page(&format!("{base}/directory?tag=coop")).await;
    assert_eq!(status, 503);
    assert!(
        directory.contains("The directory is turned off"),
        "{directory}"
    );
    let (status, _, about) = page(&format!("{base}/about")).await;
    assert_eq!(status, 200);
    assert!(about.contains("nothing is indexed"), "{about}");
    assert!(
        about.contains("has not published a contact address"),
        "{about}"
    );
    let (status, _, instances) = page(&format!("{base}/instances")).await;
    assert_eq!(status, 200);
    assert!(
        instances.contains("No instance is subscribed yet."),
        "{instances}"
    );
}

#[tokio::test]
async fn subscribed_since_can_be_hidden() {
    let w = world(&[("PLAZA_SHOW_SUBSCRIBED_SINCE", "false")]).await;
    let instances = page_with(&format!("{}/instances", w.relay.base), "Bakery Town").await;
    assert!(!instances.contains("Subscribed since"), "{instances}");
}

// ------------------------------------------------------------------------------------------------
// The browser
// ------------------------------------------------------------------------------------------------

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Headless Chromium driven by chromedriver, both killed on drop.
struct Browser {
    driver: Child,
    client: Option<Client>,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let (Some(chromium), Some(chromedriver)) = (
            on_path(&["chromium", "chromium-browser", "google-chrome"]),
            on_path(&["chromedriver"]),
        ) else {
            panic!(
                "the browser test needs Chromium and its WebDriver: `apt-get install chromium chromium-driver` \
                 (.ci/run installs them on a fresh machine)"
            );
        };
        let port = std::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // A process group of its own, so that Chromium goes with it (see `Drop`).
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let attempt = ClientBuilder::rustls()
                .expect("webdriver client")
                .capabilities(caps.clone())
                .connect(&url)
                .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if started.elapsed() < PATIENCE => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver at {url} does not start a session: {e}"),
            }
        };
        Browser {
            driver,
            client: Some(client),
            _profile: profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("session")
    }

    async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self
            .client()
            .find_all(Locator::Css(css))
            .await
            .expect("find")
        {
            out.push(element.text().await.expect("text"));
        }
        out
    }

    /// Waits until the browser has loaded a page whose address passes `check` (a click's navigation
    /// has completed).
    async fn wait_for_url(&self, what: &str, check: impl Fn(&url::Url) -> bool) -> url::Url {
        let started = Instant::now();
        loop {
            let url = self.client().current_url().await.expect("url");
            let ready = self.script("return document.readyState").await;
            if check(&url) && ready == json!("complete") {
                return url;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "still on {url}, waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn script(&self, js: &str) -> Value {
        self.client().execute(js, vec![]).await.expect("script")
    }

    /// Saves a screenshot of the whole page at `width` CSS pixels under `target/screenshots/`.
    async fn screenshot(&self, width: u32, name: &str) -> PathBuf {
        let client = self.client();
        client.set_window_size(width, 900).await.expect("resize");
        let height = self
            .script("return document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap_or(900)
            .clamp(600, 4000) as u32;
        client.set_window_size(width, height).await.expect("resize");
        let png = client.screenshot().await.expect("screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}-{width}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        println!("screenshot: {}", path.display());
        client.set_window_size(1280, 900).await.expect("resize");
        path
    }

    /// Every resource the current page loaded comes from `origin`.
    async fn assert_only_from(&self, origin: &str) {
        let loaded = self
            .script("return performance.getEntriesByType('resource').map(e => e.name)")
            .await;
        for name in loaded.as_array().expect("resource list") {
            let name = name.as_str().unwrap_or_default();
            assert!(
                name.starts_with(origin),
                "the page loaded {name} from elsewhere"
            );
        }
    }
}

impl Browser {
    /// Ends the WebDriver session (which quits Chromium).
    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    /// Kills chromedriver and what it started (its process group), also when a test failed midway.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_directory_in_a_real_browser() {
    let w = world(&[("PLAZA_RELAY_NAME", "Plaza co-op relay")]).await;
    let base = w.relay.base.clone();
    let browser = Browser::start().await;
    let c = browser.client();

    // The start page, then a query typed into its search box and submitted.
    browser.goto(&format!("{base}/")).await;
    assert_eq!(c.title().await.expect("title"), "Home · Plaza co-op relay");
    let join = browser.texts("table.join code").await;
    assert!(
        join.contains(&format!("{base}/inbox")) && join.contains(&format!("{base}/actor")),
        "{join:?}"
    );
    let home_360 = browser.screenshot(360, "home").await;
    c.find(Locator::Css("main input#q"))
        .await
        .expect("search box")
        .send_keys("bakery")
        .await
        .expect("type");
    c.find(Locator::Css("main form.search button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
    let url = browser
        .wait_for_url("/search", |u| u.path() == "/search")
        .await;
    assert_eq!(url.query(), Some("q=bakery"));
    let echoed = c
        .find(Locator::Css("main input#q"))
        .await
        .expect("box")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(echoed.as_deref(), Some("bakery"));
    let cards = c
        .find_all(Locator::Css("article.post"))
        .await
        .expect("cards");
    assert_eq!(cards.len(), 20, "a full first page");
    let status = browser.texts("main [role=status]").await;
    assert!(
        status.iter().any(|s| s.starts_with("24 posts found")),
        "{status:?}"
    );
    let marks = browser.texts("article.post mark").await;
    assert!(!marks.is_empty(), "highlights");
    assert!(
        marks.iter().all(|m| m.to_lowercase().starts_with("bak")),
        "{marks:?}"
    );
    let search_360 = browser.screenshot(360, "search").await;
    let search_1280 = browser.screenshot(1280, "search").await;
    browser.assert_only_from(&base).await;

    // A facet link narrows the query to one instance.
    let riders_host = w.riders_instance.authority();
    let facet = c
        .find(Locator::XPath(&format!(
            "//aside[contains(@class,'facets')]//a[normalize-space(.)='{riders_host}']"
        )))
        .await
        .expect("instance facet");
    facet.click().await.expect("follow facet");
    let url = browser
        .wait_for_url("the facet", |u| {
            u.query().unwrap_or_default().contains("instance")
        })
        .await;
    let q: String = url
        .query_pairs()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    assert_eq!(q, format!("bakery instance:{riders_host}"));
    let instances = browser.texts("article.post .instance").await;
    assert_eq!(
        instances,
        vec![riders_host.clone()],
        "only the hostile post of that instance"
    );
    // …which is inert: no script ran, no handler is there.
    assert_eq!(
        c.title().await.unwrap(),
        format!("bakery instance:{riders_host} – search · Plaza co-op relay")
    );
    let live = browser
        .script("return document.querySelectorAll('main script, [onerror], a[href^=\"javascript\"]').length")
        .await;
    assert_eq!(live, json!(0));
    browser.goto(&format!("{base}/tags/inert")).await;
    assert_eq!(c.title().await.unwrap(), "#inert · Plaza co-op relay");
    assert_eq!(browser.script("return document.querySelectorAll('script, [onerror], a[href^=\"javascript\"]').length").await, json!(0));
    let body = browser.texts("article.post .body").await;
    assert_eq!(body, vec!["Hostile bakery post click me".to_string()]);

    // The directory, filtered by type and tag with its form.
    browser.goto(&format!("{base}/directory")).await;
    let all = browser.texts("article.profile h2.name").await;
    assert_eq!(all.len(), 4, "{all:?}");
    c.find(Locator::Css("select#d-type option[value=organization]"))
        .await
        .expect("type option")
        .click()
        .await
        .expect("choose");
    c.find(Locator::Css("input#d-tag"))
        .await
        .expect("tag field")
        .send_keys("coop")
        .await
        .expect("type");
    c.find(Locator::Css("form.filters button"))
        .await
        .expect("filter button")
        .click()
        .await
        .expect("filter");
    let url = browser
        .wait_for_url("the filters", |u| {
            u.query().unwrap_or_default().contains("tag=coop")
        })
        .await;
    assert!(
        url.query()
            .unwrap_or_default()
            .contains("type=organization"),
        "{url}"
    );
    assert_eq!(
        browser.texts("article.profile h2.name").await,
        vec!["Bakers' Co-op".to_string()]
    );
    let fields = browser.texts("article.profile dl.fields dt").await;
    assert_eq!(fields, vec!["Sector".to_string(), "Website".to_string()]);
    // The avatar came through the relay's proxy and loaded.
    let loaded = browser
        .script("const i = document.querySelector('article.profile img.avatar'); return [i.getAttribute('src'), i.complete && i.naturalWidth]")
        .await;
    assert!(
        loaded[0]
            .as_str()
            .unwrap_or_default()
            .starts_with("/media/proxy?url="),
        "{loaded}"
    );
    assert_eq!(loaded[1], json!(8), "{loaded}");
    browser.assert_only_from(&base).await;
    // Back to every type: the quick filter keeps the tag.
    c.find(Locator::XPath(
        "//nav[@aria-label='Type']//a[normalize-space(.)='Groups']",
    ))
    .await
    .expect("groups chip")
    .click()
    .await
    .expect("groups");
    browser
        .wait_for_url("the group filter", |u| {
            u.query().unwrap_or_default().contains("type=group")
        })
        .await;
    assert_eq!(
        browser.texts("article.profile h2.name").await,
        vec!["Riders Collective".to_string()]
    );
    browser.goto(&format!("{base}/directory?tag=coop")).await;
    let directory_360 = browser.screenshot(360, "directory").await;
    let directory_1280 = browser.screenshot(1280, "directory").await;

    // From a hashtag's page to its topic, whose three ways to follow are fields to select and copy.
    browser.goto(&format!("{base}/tags/coop")).await;
    c.find(Locator::Css("a.follow-topic"))
        .await
        .expect("follow link")
        .click()
        .await
        .expect("follow the link");
    browser
        .wait_for_url("the topic page", |u| u.path() == "/topics/tag/coop")
        .await;
    assert_eq!(c.title().await.unwrap(), "#coop · Plaza co-op relay");
    let host = base.trim_start_matches("http://");
    let fields = browser
        .script(
            "return [...document.querySelectorAll('dl.follow input')].map(i => { i.focus(); i.select(); \
             return [i.id, i.readOnly, i.value.slice(i.selectionStart, i.selectionEnd)]; })",
        )
        .await;
    assert_eq!(
        fields,
        json!([
            ["handle", true, format!("@tag.coop@{host}")],
            ["relay-inbox", true, format!("{base}/topics/tag/coop/inbox")],
            ["actor", true, format!("{base}/topics/tag/coop")]
        ])
    );
    let topic_360 = browser.screenshot(360, "topic").await;
    browser.assert_only_from(&base).await;
    browser.goto(&format!("{base}/topics")).await;
    assert_eq!(c.title().await.unwrap(), "Topics · Plaza co-op relay");
    assert_eq!(
        browser.texts("header nav a[aria-current=page]").await,
        vec!["Topics".to_string()]
    );
    let topics_360 = browser.screenshot(360, "topics").await;

    for shot in [
        &home_360,
        &search_360,
        &search_1280,
        &directory_360,
        &directory_1280,
        &topic_360,
        &topics_360,
    ] {
        assert!(
            std::fs::metadata(shot)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{}",
            shot.display()
        );
    }
    browser.close().await;
    drop(w.bakers_instance);
}

/// A page's stylesheet and avatars never run into the per-IP limit meant for searches: the avatar proxy
/// has its own allowance and static assets none, while searches past their budget still get 429.
#[tokio::test]
async fn a_page_loads_whole_while_searches_are_limited() {
    const READS_BURST: usize = 10;
    let burst = READS_BURST.to_string();
    let mut relay = Relay::start_with(&[
        ("PLAZA_CLIENT_IP_RATE", "1"),
        ("PLAZA_CLIENT_IP_BURST", burst.as_str()),
    ])
    .await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(AVATAR_PNG)
        .expect("png");
    a.host_raw("/avatars/bakers.png", "image/png", png.clone());
    let bakers = actor(
        &a,
        "bakers",
        "Organization",
        "Bakers' Co-op",
        "<p>Bread.</p>",
    );
    relay.kill();
    {
        let index = Index::open(&relay.data_dir.join("index"), IndexConfig::default())
            .expect("open the relay's index");
        index.upsert_actor(&bakers).expect("actor");
        let post = note(
            &bakers,
            1,
            "<p>Fresh sourdough</p>",
            "en",
            &[],
            "2026-11-20T09:00:00Z",
        );
        assert!(
            index
                .add_post(&post, &bakers, &a.authority())
                .expect("add")
                .allowed()
        );
        index.commit().expect("commit");
    }
    relay.start_again().await;

    // One read: the search page, with the author's avatar through the relay's proxy.
    let (status, _, body) = page(&format!("{}/search?q=sourdough", relay.base)).await;
    assert_eq!(status, 200, "{body}");
    let start = body.find("src=\"/media/proxy?").expect("an avatar link") + "src=\"".len();
    let end = start + body[start..].find('"').expect("end of the link");
    let avatar = format!(
        "{}{}",
        relay.base,
        body[start..end].replace("&#38;", "&").replace("&amp;", "&")
    );
    // A page of 40 results shows 40 avatars, and every page asks for the stylesheet.
    for n in 0..40 {
        let response = get(&avatar).await;
        assert_eq!(response.status(), 200, "avatar fetch {n}: {avatar}");
        assert_eq!(response.bytes().await.expect("avatar"), png);
    }
    for n in 0..2 * READS_BURST {
        let response = get(&format!("{}/static/plaza.css", relay.base)).await;
        assert_eq!(response.status(), 200, "stylesheet fetch {n}");
    }
    // Searches still spend the reads budget (one already went to the page above): the burst is
    // answered, then a 429 comes. The budget refills at 1/s, so on a slow machine a refill may let one
    // more search through before the refusal; the loop goes on until the refusal, within bounds.
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..4 * READS_BURST {
        let url = format!("{}/api/v2/search?q=sourdough", relay.base);
        let response = get(&url).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
    }
    // The refusal says when to come back, as Mastodon's do (Mastodon.py waits just that long).
    let refused =
        refused.unwrap_or_else(|| panic!("searches past the burst were refused: {statuses:?}"));
    let header = |name: &str| refused.headers().get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("x-ratelimit-limit"), Some(burst.as_str()));
    assert_eq!(header("x-ratelimit-remaining"), Some("0"));
    assert!(
        header("x-ratelimit-reset").is_some_and(|t| t.ends_with('Z') && t.len() == 24),
        "{:?}",
        refused.headers()
    );
    assert!(header("retry-after").is_some());
    assert!(
        statuses[..READS_BURST - 1].iter().all(|s| *s == 200),
        "{statuses:?}"
    );
    assert!(
        statuses.len() >= READS_BURST,
        "refused inside the burst: {statuses:?}"
    );
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("plaza_rate_limited_total{limit=\"client_ip_media\"} 0\n"),
        "{metrics}"
    );
}
