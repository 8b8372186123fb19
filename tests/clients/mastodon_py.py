"""What an app built on Mastodon.py does first, against a Plaza relay: read the instance, search, page
through a hashtag timeline, open a status, read the public timeline, then Explore: open the status's
author (by handle and by id) and page through their statuses, read the profile directory and the
hashtag. Prints what it saw as one JSON object for the end-to-end test (tests/e2e/clients.rs) to
check; any error or library warning fails.

Usage: mastodon_py.py BASE_URL QUERY HASHTAG
"""

import json
import sys
import warnings

# A warning from the library (an instance it finds odd, a version it cannot read) is a failure here.
warnings.filterwarnings("error", module=r"mastodon(\..*)?$")

from mastodon import Mastodon  # noqa: E402  (after the warning filter)


def uris(statuses):
    return [s["uri"] for s in statuses]


def main(base, query, hashtag):
    # No access token: the relay's read API is public. The default version check reads the instance.
    api = Mastodon(api_base_url=base, request_timeout=20, ratelimit_method="throw")
    instance = api.instance_v2()
    api.retrieve_mastodon_version()
    found = api.search_v2(query, result_type="statuses")
    first = api.timeline_hashtag(hashtag, limit=2)
    second = api.fetch_next(first) or []
    back = api.fetch_previous(second) or [] if second else []
    status = api.status(first[0]["id"]) if first else None
    public = api.timeline_public(limit=40)
    account = api.account_lookup(status["account"]["acct"]) if status else None
    by_id = api.account(account["id"]) if account else None
    own_first = api.account_statuses(account["id"], limit=2) if account else []
    own_pages = [own_first]
    while own_pages[-1] and len(own_pages) <= 5:
        own_pages.append(api.fetch_next(own_pages[-1]) or [])
    only_tagged = api.account_statuses(account["id"], tagged=hashtag, exclude_replies=True) if account else []
    directory = api.directory(limit=40, order="new")
    tag = api.tag(hashtag)
    print(json.dumps({
        "client": "Mastodon.py",
        "instance_domain": instance["domain"],
        "api_version": api.mastodon_api_version,
        "version": api.retrieve_mastodon_version(),
        "search": uris(found["statuses"]),
        "tag_pages": [uris(first), uris(second)],
        "tag_back": uris(back),
        "status": status["uri"] if status else None,
        "status_account": status["account"]["acct"] if status else None,
        "public": uris(public),
        "lookup": {"id": str(account["id"]), "acct": account["acct"],
                   "display_name": account["display_name"]} if account else None,
        "account_by_id": {"id": str(by_id["id"]), "acct": by_id["acct"]} if by_id else None,
        "account_pages": [uris(page) for page in own_pages],
        "account_tagged": uris(only_tagged),
        "directory": [a["acct"] for a in directory],
        "tag": {"name": tag["name"], "following": tag.get("following"),
                "days": len(tag["history"]),
                "uses": sum(int(day["uses"]) for day in tag["history"]),
                "accounts": sum(int(day["accounts"]) for day in tag["history"])},
    }))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
