//! The one error type of the `plaza` crate.
//!
//! Every fallible function in the relay returns [`Error`]. Each variant says what went wrong in words an
//! instance admin can act on; [`Error::status`] maps it to the HTTP status the inbox and the other handlers
//! answer with, so handlers never decide statuses themselves.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything that can go wrong inside the relay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file or an environment override holds a value that cannot be used.
    #[error("configuration: {0}")]
    Config(String),

    /// A request carried no `Signature` (draft-cavage) nor `Signature-Input` (RFC 9421) header.
    #[error("request is not signed")]
    SignatureMissing,

    /// The signature header is present but cannot be parsed or misses a required parameter.
    #[error("malformed signature header: {0}")]
    SignatureMalformed(String),

    /// The signature does not cover what must be covered (date, digest, method/target…).
    #[error("signature does not cover {0}")]
    SignatureIncomplete(String),

    /// The signature's date or `created` lies outside the accepted clock window.
    #[error("signature date out of window: {0}")]
    SignatureExpired(String),

    /// The body digest header is missing, unsupported or does not match the body.
    #[error("digest: {0}")]
    Digest(String),

    /// The request was addressed (and signed) for another server than this relay: its `Host` is not
    /// the relay's public authority, so it may be a signature replayed from elsewhere.
    #[error("request is addressed to {host}, not to this relay ({relay})")]
    SignatureWrongHost {
        /// The Host the request carried.
        host: String,
        /// The relay's own authority.
        relay: String,
    },

    /// The cryptographic check failed with the signer's current key.
    #[error("signature verification failed")]
    SignatureInvalid,

    /// The signing key could not be parsed, or uses an algorithm Plaza does not accept.
    #[error("unusable public key: {0}")]
    KeyUnusable(String),

    /// The key that signed the request does not belong to the actor of the activity.
    #[error("key {key_id} may not act for {actor}")]
    KeyNotOwned {
        /// The keyId from the signature.
        key_id: String,
        /// The actor the activity claims.
        actor: String,
    },

    /// A remote document (actor, key, object) could not be fetched or was not usable.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },

    /// The signer's key or actor document could not be fetched or read (HTML, too large, host down or
    /// silent). The sender's problem, answered 401 so that it does not retry a 5xx for days.
    #[error("cannot get the signing key or actor {url}: {reason}")]
    KeyFetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },

    /// An outgoing fetch or delivery aimed at an address that the configuration forbids
    /// (loopback, private ranges, plain http) .
    #[error(
        "refusing to contact {0}: private or loopback address (set PLAZA_ALLOW_PRIVATE_NETWORKS=true to allow)"
    )]
    ForbiddenAddress(String),

    /// A request body or document is not the JSON shape it has to be.
    #[error("bad request: {0}")]
    BadRequest(String),

    /// An activity came from an instance that is not subscribed to the relay.
    #[error("instance {0} is not subscribed to this relay")]
    NotSubscribed(String),

    /// A request body larger than what its kind may be (a Follow is a few hundred bytes).
    #[error("too large: {0}")]
    TooLarge(String),

    /// The relay's admins blocked this instance (by its domain or the software it runs, or by removing
    /// its subscription); it is refused until they lift the block.
    #[error("instance {0} is blocked by the relay's admins")]
    InstanceBlocked(String),

    /// An admin request without the right bearer token.
    #[error("admin token missing or wrong")]
    AdminUnauthorized,

    /// The sender exceeded its rate limit.
    #[error("rate limit exceeded for {0}")]
    RateLimited(String),

    /// The requested resource does not exist here.
    #[error("not found: {0}")]
    NotFound(String),

    /// A Mastodon API record (an account, a hashtag) that is not here: answered 404 with Mastodon's own
    /// words, which clients match on.
    #[error("Record not found")]
    RecordNotFound,

    /// The embedded store (SQLite) failed.
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),

    /// The PostgreSQL store failed: the server refused a statement (a connection that broke is
    /// [`Error::Unavailable`]).
    #[error("store (PostgreSQL): {0}")]
    Postgres(String),

    /// The store answered something the relay cannot use (no row where one must be, a pool that
    /// cannot hand out a connection, a schema newer than this release).
    #[error("store: {0}")]
    Database(String),

    /// A file in the data directory could not be read or written.
    #[error("i/o on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A cryptographic primitive failed where it should not (key generation, signing).
    #[error("crypto: {0}")]
    Crypto(String),

    /// The relay is shutting down or one of its tasks has stopped.
    #[error("relay unavailable: {0}")]
    Unavailable(String),

    /// The discovery index could not open, store, remove or commit documents.
    #[error("index: {0}")]
    Index(String),

    /// A search query is malformed or over a limit; the reason says what to change.
    #[error("invalid query: {0}")]
    InvalidQuery(String),

    /// Search cannot answer: the index is turned off, or the search ran out of time.
    #[error("search unavailable: {0}")]
    SearchUnavailable(String),

    /// A signature names a key id this relay never handed out (or one whose registration was removed):
    /// a FASP request from an unknown server.
    #[error("unknown key id {0}")]
    UnknownKey(String),

    /// A FASP capability the asking server has not activated (or that Plaza does not offer).
    #[error("capability not activated: {0}")]
    CapabilityInactive(String),

    /// A well-formed request that misses something required (FASP answers 422: `term` without a value).
    #[error("unprocessable: {0}")]
    Unprocessable(String),

    /// A request the relay's rules refuse (a FASP sign-up from a server the subscription policy does
    /// not admit, or one already registered).
    #[error("refused: {0}")]
    Refused(String),
}

impl From<tokio_postgres::Error> for Error {
    /// The server's own words when it refused a statement (tokio-postgres alone says "db error").
    /// What a retry can get past is [`Error::Unavailable`] (a 503, which senders retry): a connection
    /// that closed or was ended by the server (a restart, `pg_terminate_backend`; the store takes a new
    /// one), a deadlock or a serialization failure.
    fn from(e: tokio_postgres::Error) -> Error {
        use tokio_postgres::error::SqlState;
        let transient = e.is_closed()
            || e.code().is_some_and(|code| {
                code.code().starts_with("08")
                    || [
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                        SqlState::T_R_DEADLOCK_DETECTED,
                        SqlState::T_R_SERIALIZATION_FAILURE,
                    ]
                    .contains(code)
            });
        let reason = match e.as_db_error() {
            Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
            None => match std::error::Error::source(&e) {
                Some(source) => format!("{e}: {source}"),
                None => e.to_string(),
            },
        };
        if transient {
            Error::Unavailable(format!("store (PostgreSQL): {reason}"))
        } else {
            Error::Postgres(reason)
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::SignatureMissing
            | Error::SignatureMalformed(_)
            | Error::SignatureIncomplete(_)
            | Error::SignatureExpired(_)
            | Error::SignatureWrongHost { .. }
            | Error::Digest(_)
            | Error::SignatureInvalid
            | Error::KeyUnusable(_)
            | Error::KeyNotOwned { .. }
            | Error::KeyFetch { .. }
            | Error::UnknownKey(_)
            | Error::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            Error::CapabilityInactive(_) | Error::Refused(_) => StatusCode::FORBIDDEN,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Fetch { .. } => StatusCode::BAD_GATEWAY,
            Error::ForbiddenAddress(_) | Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotSubscribed(_) => StatusCode::FORBIDDEN,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::InstanceBlocked(_) => StatusCode::FORBIDDEN,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::NotFound(_) | Error::RecordNotFound => StatusCode::NOT_FOUND,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Config(_)
            | Error::Store(_)
            | Error::Postgres(_)
            | Error::Database(_)
            | Error::Io { .. }
            | Error::Crypto(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Index(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            Error::SearchUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The relay's error for an index failure: a malformed query is the asker's [`Error::InvalidQuery`],
    /// anything else the relay's [`Error::Index`].
    pub fn from_index(error: plaza_index::Error) -> Self {
        match error {
            plaza_index::Error::Query(reason) => Error::InvalidQuery(reason),
            other => Error::Index(other.to_string()),
        }
    }

    /// Builds a [`Error::Fetch`].
    pub fn fetch(url: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Fetch {
            url: url.into(),
            reason: reason.to_string(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, %status, "request refused");
        }
        let body = serde_json::json!({ "error": self.to_string() });
        (status, axum::Json(body)).into_response()
    }
}
