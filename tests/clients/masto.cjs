// What an app built on masto.js (the library behind Elk) does first, against a Plaza relay: read the
// instance, search, page through a hashtag timeline, open a status, read the public timeline, then
// Explore: open the status's author (by handle and by id) and page through their statuses, read the
// profile directory and the hashtag. Prints what it saw as one JSON object for the end-to-end test
// (tests/e2e/clients.rs) to check; any error fails.
//
// Usage: NODE_PATH=<dir with masto installed>/node_modules node masto.cjs BASE_URL QUERY HASHTAG

"use strict";

const { createRestAPIClient } = require("masto");

const uris = (statuses) => statuses.map((s) => s.uri);

async function main(base, query, hashtag) {
  const masto = createRestAPIClient({ url: base, timeout: 20000 });
  const instance = await masto.v2.instance.fetch();
  const found = await masto.v2.search.list({ q: query, type: "statuses" });
  const pages = [];
  // The paginator follows the Link header's `next` until a page comes back empty.
  for await (const page of masto.v1.timelines.tag.$select(hashtag).list({ limit: 2 })) {
    pages.push(uris(page));
    if (pages.length > 5) throw new Error("the hashtag timeline does not end");
  }
  const first = await masto.v1.timelines.tag.$select(hashtag).list({ limit: 2 });
  const status = first.length ? await masto.v1.statuses.$select(first[0].id).fetch() : null;
  const publicTimeline = await masto.v1.timelines.public.list({ limit: 40 });
  const account = status ? await masto.v1.accounts.lookup({ acct: status.account.acct }) : null;
  const byId = account ? await masto.v1.accounts.$select(account.id).fetch() : null;
  const accountPages = [];
  if (account) {
    for await (const page of masto.v1.accounts.$select(account.id).statuses.list({ limit: 2 })) {
      accountPages.push(uris(page));
      if (accountPages.length > 5) throw new Error("the account's statuses do not end");
    }
  }
  const accountTagged = account
    ? await masto.v1.accounts.$select(account.id).statuses.list({ tagged: hashtag, excludeReplies: true })
    : [];
  const directory = await masto.v1.directory.list({ limit: 40, order: "new" });
  const tag = await masto.v1.tags.$select(hashtag).fetch();
  const sum = (field) => tag.history.reduce((total, day) => total + Number(day[field]), 0);
  console.log(JSON.stringify({
    client: "masto.js",
    instance_domain: instance.domain,
    api_version: Number(instance.apiVersions?.mastodon),
    version: instance.version,
    search: uris(found.statuses),
    tag_pages: pages,
    status: status ? status.uri : null,
    status_account: status ? status.account.acct : null,
    public: uris(publicTimeline),
    lookup: account ? { id: account.id, acct: account.acct, display_name: account.displayName } : null,
    account_by_id: byId ? { id: byId.id, acct: byId.acct } : null,
    account_pages: accountPages,
    account_tagged: uris(accountTagged),
    directory: directory.map((a) => a.acct),
    tag: {
      name: tag.name,
      following: tag.following,
      days: tag.history.length,
      uses: sum("uses"),
      accounts: sum("accounts"),
    },
  }));
}

const args = process.argv.slice(2);
if (args.length !== 3) {
  console.error("usage: node masto.cjs BASE_URL QUERY HASHTAG");
  process.exit(2);
}
main(...args).catch((e) => {
  console.error(`masto.js failed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
