//! The FASP capabilities Plaza really offers, with their versions: `provider_info` lists exactly these,
//! and only these can be activated. Whoever implements another capability adds it here.

/// One offered capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// The capability id (`account_search`).
    pub id: &'static str,
    /// Its major version (the `v0` of its paths).
    pub major: u32,
    /// Its minor version.
    pub minor: u32,
}

impl Capability {
    /// `major.minor`, as `provider_info` lists it.
    pub fn version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// `account_search` v0.1 (discovery specification).
pub const ACCOUNT_SEARCH: Capability = Capability {
    id: "account_search",
    major: 0,
    minor: 1,
};

/// `data_sharing` v0.1 (discovery specification): servers announce URIs, Plaza fetches and indexes.
pub const DATA_SHARING: Capability = Capability {
    id: "data_sharing",
    major: 0,
    minor: 1,
};

/// `trends` v0.1 (discovery specification): content, hashtags and links trending in the index.
pub const TRENDS: Capability = Capability {
    id: "trends",
    major: 0,
    minor: 1,
};

/// `follow_recommendation` v0.1 (discovery specification): accounts to follow for a given account.
pub const FOLLOW_RECOMMENDATION: Capability = Capability {
    id: "follow_recommendation",
    major: 0,
    minor: 1,
};

/// Everything offered.
pub const OFFERED: &[Capability] = &[ACCOUNT_SEARCH, DATA_SHARING, TRENDS, FOLLOW_RECOMMENDATION];

/// The offered capability `id` in major version `major`, if any.
pub fn offered(id: &str, major: u32) -> Option<Capability> {
    OFFERED
        .iter()
        .copied()
        .find(|c| c.id == id && c.major == major)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_implemented_is_offered() {
        assert_eq!(offered("account_search", 0), Some(ACCOUNT_SEARCH));
        assert_eq!(offered("account_search", 1), None);
        assert_eq!(offered("data_sharing", 0), Some(DATA_SHARING));
        assert_eq!(offered("data_sharing", 1), None);
        assert_eq!(offered("trends", 0), Some(TRENDS));
        assert_eq!(offered("trends", 1), None);
        assert_eq!(TRENDS.version(), "0.1");
        assert_eq!(
            offered("follow_recommendation", 0),
            Some(FOLLOW_RECOMMENDATION)
        );
        assert_eq!(offered("follow_recommendation", 1), None);
        assert_eq!(ACCOUNT_SEARCH.version(), "0.1");
        assert_eq!(DATA_SHARING.version(), "0.1");
        assert_eq!(FOLLOW_RECOMMENDATION.version(), "0.1");
    }
}
