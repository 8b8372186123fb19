//! Languages: normalising the tags servers send (`en-US`, `pt_BR`, `und`) to ISO 639-1 codes, detecting
//! the language of text that carries none, and choosing the stemmer a language gets.

use tantivy::tokenizer::Language;

/// ISO 639-3 codes (what the detector names) and their ISO 639-1 form.
const ISO3_TO_ISO1: &[(&str, &str)] = &[
    ("afr", "af"),
    ("aka", "ak"),
    ("amh", "am"),
    ("ara", "ar"),
    ("aze", "az"),
    ("bel", "be"),
    ("ben", "bn"),
    ("bul", "bg"),
    ("cat", "ca"),
    ("ces", "cs"),
    ("cmn", "zh"),
    ("dan", "da"),
    ("deu", "de"),
    ("ell", "el"),
    ("eng", "en"),
    ("epo", "eo"),
    ("est", "et"),
    ("fin", "fi"),
    ("fra", "fr"),
    ("guj", "gu"),
    ("heb", "he"),
    ("hin", "hi"),
    ("hrv", "hr"),
    ("hun", "hu"),
    ("hye", "hy"),
    ("ind", "id"),
    ("ita", "it"),
    ("jav", "jv"),
    ("jpn", "ja"),
    ("kan", "kn"),
    ("kat", "ka"),
    ("khm", "km"),
    ("kor", "ko"),
    ("lat", "la"),
    ("lav", "lv"),
    ("lit", "lt"),
    ("mal", "ml"),
    ("mar", "mr"),
    ("mkd", "mk"),
    ("mya", "my"),
    ("nep", "ne"),
    ("nld", "nl"),
    ("nob", "no"),
    ("ori", "or"),
    ("pan", "pa"),
    ("pes", "fa"),
    ("pol", "pl"),
    ("por", "pt"),
    ("ron", "ro"),
    ("rus", "ru"),
    ("sin", "si"),
    ("slk", "sk"),
    ("slv", "sl"),
    ("sna", "sn"),
    ("spa", "es"),
    ("srp", "sr"),
    ("swe", "sv"),
    ("tam", "ta"),
    ("tel", "te"),
    ("tgl", "tl"),
    ("tha", "th"),
    ("tuk", "tk"),
    ("tur", "tr"),
    ("ukr", "uk"),
    ("urd", "ur"),
    ("uzb", "uz"),
    ("vie", "vi"),
    ("yid", "yi"),
    ("zul", "zu"),
];

/// The languages with a stemmer, by ISO 639-1 code.
pub const STEMMED: &[(&str, Language)] = &[
    ("ar", Language::Arabic),
    ("da", Language::Danish),
    ("nl", Language::Dutch),
    ("en", Language::English),
    ("fi", Language::Finnish),
    ("fr", Language::French),
    ("de", Language::German),
    ("el", Language::Greek),
    ("hu", Language::Hungarian),
    ("it", Language::Italian),
    ("no", Language::Norwegian),
    ("pt", Language::Portuguese),
    ("ro", Language::Romanian),
    ("ru", Language::Russian),
    ("es", Language::Spanish),
    ("sv", Language::Swedish),
    ("ta", Language::Tamil),
    ("tr", Language::Turkish),
];

/// Only this much text is looked at to detect a language: more costs time and rarely changes the answer.
const DETECT_PREFIX_BYTES: usize = 160;

/// Normalises a language tag (`en-US`, `pt_BR`, `EN`, `nb`) to a two-letter lowercase code; `None` for
/// `und`, empty or malformed tags.
pub fn normalize(tag: &str) -> Option<String> {
    let primary = tag
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !primary.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    match primary.len() {
        // Norwegian Bokmål and Nynorsk share a stemmer and a facet.
        2 if primary == "nb" || primary == "nn" => Some("no".to_owned()),
        2 => Some(primary),
        3 => ISO3_TO_ISO1
            .iter()
            .find(|(three, _)| *three == primary)
            .map(|(_, two)| (*two).to_owned()),
        _ => None,
    }
}

/// The language of `text` when the detector is confident, as an ISO 639-1 code.
pub fn detect(text: &str) -> Option<String> {
    let mut end = text.len().min(DETECT_PREFIX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let info = whatlang::detect(&text[..end])?;
    if !info.is_reliable() {
        return None;
    }
    normalize(info.lang().code())
}

/// The stemmer of a language code, if it has one.
pub fn stemmer(code: &str) -> Option<Language> {
    STEMMED
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, language)| *language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalised() {
        assert_eq!(normalize("en-US").as_deref(), Some("en"));
        assert_eq!(normalize("pt_BR").as_deref(), Some("pt"));
        assert_eq!(normalize("DE").as_deref(), Some("de"));
        assert_eq!(normalize("nb").as_deref(), Some("no"));
        assert_eq!(normalize("jpn").as_deref(), Some("ja"));
        assert_eq!(normalize("und"), None);
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("e1"), None);
    }

    #[test]
    fn detection_names_clear_text() {
        assert_eq!(
            detect("Die Genossenschaft trifft sich jeden Donnerstag im Gemeindehaus, alle sind willkommen.")
                .as_deref(),
            Some("de")
        );
        assert_eq!(
            detect("La coopérative se réunit chaque jeudi à la maison commune, tout le monde est bienvenu.")
                .as_deref(),
            Some("fr")
        );
        assert_eq!(detect("ok"), None);
    }

    #[test]
    fn stemmers_by_code() {
        assert_eq!(stemmer("en"), Some(Language::English));
        assert_eq!(stemmer("ja"), None);
    }
}
