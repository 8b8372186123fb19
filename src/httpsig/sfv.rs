//! A small RFC 8941 (Structured Field Values) parser.
//!
//! RFC 9421 (`Signature-Input`, `Signature`) and RFC 9530 (`Content-Digest`) headers are structured-field
//! dictionaries. This module parses exactly what those headers need — dictionaries whose members are items
//! or inner lists, with parameters — and keeps the raw text of every member, because the
//! `@signature-params` line of an RFC 9421 signature base must repeat the inner list as it was received.
//! It never panics: every index is checked and malformed input yields `Err(reason)`. It runs before any
//! key is known, so it is bounded: input length and the number of members, inner-list items and
//! parameters are capped, and duplicate keys are found through a map, never by rescanning.
//!
//! Why not the maintained `sfv` crate (0.16, RFC 9651)? Checked against the fixtures it is correct (the
//! seven RFC 9421 `Signature-Input` values round-trip) and linear (~4–8 ms for a 400 KB header, release
//! build), but it has no limits (it reads and allocates the whole field before returning) and keeps no
//! member text, so `@signature-params` would have to be re-serialized rather than repeated as received.
//! This parser does both with caps that stop it early.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

use super::{MAX_SIGNATURE_ENTRIES, MAX_SIGNATURE_HEADER_BYTES};

/// Standard alphabet that accepts both padded and unpadded input (RFC 8941 §4.2.7 asks parsers to be lax).
pub(crate) const B64_LAX: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A bare item (RFC 8941 §3.3).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BareItem {
    Integer(i64),
    /// Kept as its textual form; nothing in Plaza computes with decimals.
    Decimal(String),
    String(String),
    Token(String),
    Bytes(Vec<u8>),
    Boolean(bool),
}

/// Parameters in received order.
pub(crate) type Params = Vec<(String, BareItem)>;

/// An item with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub bare: BareItem,
    pub params: Params,
}

/// The value of one dictionary member.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MemberValue {
    Item(Item),
    InnerList { items: Vec<Item>, params: Params },
}

/// One dictionary member with the exact text of its value (everything after `key=`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub key: String,
    pub value: MemberValue,
    pub raw: String,
}

/// Looks a parameter up by name.
pub(crate) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a BareItem> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Parses a dictionary. A later duplicate key replaces the earlier one (RFC 8941 §4.2.2) while keeping the
/// first one's position.
///
/// Bounded for hostile input: longer than [`MAX_SIGNATURE_HEADER_BYTES`] is refused unread, and parsing
/// stops with an error at the first member, inner-list item or parameter past [`MAX_SIGNATURE_ENTRIES`]
/// (duplicates count: they are entries the parser had to read).
pub(crate) fn parse_dictionary(input: &str) -> Result<Vec<Member>, String> {
    if input.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(format!(
            "{} bytes, over the limit of {MAX_SIGNATURE_HEADER_BYTES}",
            input.len()
        ));
    }
    let mut p = Parser {
        s: input.as_bytes(),
        i: 0,
    };
    let mut members: Vec<Member> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut read = 0usize;
    p.skip_sp();
    if p.eof() {
        return Ok(members);
    }
    loop {
        read += 1;
        if read > MAX_SIGNATURE_ENTRIES {
            return Err(format!("more than {MAX_SIGNATURE_ENTRIES} members"));
        }
        let key = p.key()?;
        let start = p.i;
        let value = if p.eat(b'=') {
            let start = p.i;
            let v = p.item_or_inner_list()?;
            (v, start)
        } else {
            let params = p.params()?;
            (
                MemberValue::Item(Item {
                    bare: BareItem::Boolean(true),
                    params,
                }),
                start,
            )
        };
        let raw = input.get(value.1..p.i).unwrap_or_default().to_owned();
        let member = Member {
            key,
            value: value.0,
            raw,
        };
        match position.get(&member.key).and_then(|&i| members.get_mut(i)) {
            Some(existing) => *existing = member,
            None => {
                position.insert(member.key.clone(), members.len());
                members.push(member);
            }
        }
        p.skip_ows();
        if p.eof() {
            return Ok(members);
        }
        if !p.eat(b',') {
            return Err(format!("expected ',' at byte {}", p.i));
        }
        p.skip_ows();
        if p.eof() {
            return Err("trailing comma".into());
        }
    }
}

/// Serializes a string item (RFC 8941 §4.1.6).
pub(crate) fn serialize_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Serializes a bare item.
pub(crate) fn serialize_bare(item: &BareItem, out: &mut String) {
    match item {
        BareItem::Integer(n) => out.push_str(&n.to_string()),
        BareItem::Decimal(d) => out.push_str(d),
        BareItem::String(s) => serialize_string(s, out),
        BareItem::Token(t) => out.push_str(t),
        BareItem::Bytes(b) => {
            out.push(':');
            out.push_str(&general_purpose::STANDARD.encode(b));
            out.push(':');
        }
        BareItem::Boolean(true) => out.push_str("?1"),
        BareItem::Boolean(false) => out.push_str("?0"),
    }
}

/// Serializes parameters (`;key` for true, `;key=value` otherwise).
pub(crate) fn serialize_params(params: &Params, out: &mut String) {
    for (k, v) in params {
        out.push(';');
        out.push_str(k);
        if *v != BareItem::Boolean(true) {
            out.push('=');
            serialize_bare(v, out);
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn key(&mut self) -> Result<String, String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => self.i += 1,
            _ => return Err(format!("expected a key at byte {start}")),
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'_' | b'-' | b'.' | b'*')
            {
                self.i += 1;
            } else {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn item_or_inner_list(&mut self) -> Result<MemberValue, String> {
        if self.peek() == Some(b'(') {
            self.i += 1;
            let mut items = Vec::new();
            loop {
                self.skip_sp();
                if self.eat(b')') {
                    let params = self.params()?;
                    return Ok(MemberValue::InnerList { items, params });
                }
                if items.len() == MAX_SIGNATURE_ENTRIES {
                    return Err(format!(
                        "more than {MAX_SIGNATURE_ENTRIES} items in an inner list"
                    ));
                }
                let bare = self.bare_item()?;
                let params = self.params()?;
                items.push(Item { bare, params });
                match self.peek() {
                    Some(b' ' | b')') => {}
                    _ => {
                        return Err(format!(
                            "expected ' ' or ')' in inner list at byte {}",
                            self.i
                        ));
                    }
                }
            }
        }
        let bare = self.bare_item()?;
        let params = self.params()?;
        Ok(MemberValue::Item(Item { bare, params }))
    }

    fn params(&mut self) -> Result<Params, String> {
        let mut params: Params = Vec::new();
        let mut read = 0usize;
        while self.eat(b';') {
            // With at most this many, the replace-by-name scan below stays a few hundred comparisons.
            read += 1;
            if read > MAX_SIGNATURE_ENTRIES {
                return Err(format!("more than {MAX_SIGNATURE_ENTRIES} parameters"));
            }
            self.skip_sp();
            let key = self.key()?;
            let value = if self.eat(b'=') {
                self.bare_item()?
            } else {
                BareItem::Boolean(true)
            };
            match params.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = value,
                None => params.push((key, value)),
            }
        }
        Ok(params)
    }

    fn bare_item(&mut self) -> Result<BareItem, String> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string(),
            Some(b':') => self.bytes(),
            Some(b'?') => self.boolean(),
            Some(c) if c.is_ascii_alphabetic() || c == b'*' => Ok(self.token()),
            _ => Err(format!("expected an item at byte {}", self.i)),
        }
    }

    fn number(&mut self) -> Result<BareItem, String> {
        let start = self.i;
        self.eat(b'-');
        let digits_start = self.i;
        let mut dot = None;
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                self.i += 1;
            } else if c == b'.' && dot.is_none() {
                dot = Some(self.i);
                self.i += 1;
            } else {
                break;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        let ndigits = self.i - digits_start;
        match dot {
            None => {
                if ndigits == 0 || ndigits > 15 {
                    return Err(format!("bad integer {text:?}"));
                }
                text.parse::<i64>()
                    .map(BareItem::Integer)
                    .map_err(|e| e.to_string())
            }
            Some(d) => {
                let int_digits = d - digits_start;
                let frac_digits = self.i - d - 1;
                if int_digits == 0 || int_digits > 12 || frac_digits == 0 || frac_digits > 3 {
                    return Err(format!("bad decimal {text:?}"));
                }
                Ok(BareItem::Decimal(text.to_owned()))
            }
        }
    }

    fn string(&mut self) -> Result<BareItem, String> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(BareItem::String(out));
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(char::from(c));
                            self.i += 1;
                        }
                        _ => return Err("bad escape in string".into()),
                    }
                }
                Some(c @ 0x20..=0x7e) => {
                    out.push(char::from(c));
                    self.i += 1;
                }
                Some(_) => return Err("non-printable character in string".into()),
            }
        }
    }

    fn token(&mut self) -> BareItem {
        let start = self.i;
        self.i += 1;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        BareItem::Token(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn bytes(&mut self) -> Result<BareItem, String> {
        self.i += 1; // opening colon
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=') {
                self.i += 1;
            } else {
                break;
            }
        }
        let body = &self.s[start..self.i];
        if !self.eat(b':') {
            return Err("unterminated byte sequence".into());
        }
        B64_LAX
            .decode(body)
            .map(BareItem::Bytes)
            .map_err(|e| format!("bad byte sequence: {e}"))
    }

    fn boolean(&mut self) -> Result<BareItem, String> {
        self.i += 1;
        match self.peek() {
            Some(b'1') => {
                self.i += 1;
                Ok(BareItem::Boolean(true))
            }
            Some(b'0') => {
                self.i += 1;
                Ok(BareItem::Boolean(false))
            }
            _ => Err("bad boolean".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_with_inner_list_and_params() {
        let d = parse_dictionary(
            r#"sig1=("@method" "@query-param";name="Pet" "x";req);created=1618884473;keyid="k", b=:AQI=:, flag"#,
        )
        .expect("parses");
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].key, "sig1");
        assert_eq!(
            d[0].raw,
            r#"("@method" "@query-param";name="Pet" "x";req);created=1618884473;keyid="k""#
        );
        let MemberValue::InnerList { items, params } = &d[0].value else {
            panic!("inner list")
        };
        assert_eq!(items.len(), 3);
        assert_eq!(
            param(&items[1].params, "name"),
            Some(&BareItem::String("Pet".into()))
        );
        assert_eq!(
            param(&items[2].params, "req"),
            Some(&BareItem::Boolean(true))
        );
        assert_eq!(
            param(params, "created"),
            Some(&BareItem::Integer(1618884473))
        );
        assert_eq!(
            d[1].value,
            MemberValue::Item(Item {
                bare: BareItem::Bytes(vec![1, 2]),
                params: vec![]
            })
        );
        assert_eq!(
            d[2].value,
            MemberValue::Item(Item {
                bare: BareItem::Boolean(true),
                params: vec![]
            })
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "SHA-256=:abc:",
            "a=(",
            "a=(\"x\"",
            "a=\"unterminated",
            "a=:not base64!:",
            "a=1,",
            "a=1 b=2",
            "a=1234567890123456",
            "a=?2",
            "a=\"\\x\"",
            "a=-",
            "a=1.",
            "a=é",
        ] {
            assert!(parse_dictionary(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn serializes_params_and_strings() {
        let mut out = String::new();
        serialize_string("a\"b\\c", &mut out);
        serialize_params(
            &vec![
                ("req".into(), BareItem::Boolean(true)),
                ("name".into(), BareItem::String("x".into())),
            ],
            &mut out,
        );
        assert_eq!(out, r#""a\"b\\c";req;name="x""#);
    }

    #[test]
    fn parser_stops_at_the_caps() {
        let huge = format!("a=\"{}\"", "x".repeat(430 * 1024));
        let err = parse_dictionary(&huge).expect_err("430 KB");
        assert!(err.contains("over the limit"), "{err}");
        for (input, reason) in [
            (vec!["a=1"; 2000].join(","), "more than 32 members"),
            (
                format!("s=({})", vec!["\"x\""; 2000].join(" ")),
                "more than 32 items",
            ),
            (
                format!("s=1{}", ";p".repeat(2000)),
                "more than 32 parameters",
            ),
            (
                format!("s=(\"x\"{})", ";p".repeat(2000)),
                "more than 32 parameters",
            ),
        ] {
            assert!(input.len() <= MAX_SIGNATURE_HEADER_BYTES, "{reason}");
            let err = parse_dictionary(&input).expect_err(reason);
            assert!(err.contains(reason), "{err}");
        }
        let at_cap = format!(
            "s=({});{}",
            vec!["\"x\""; 32].join(" "),
            vec!["p=1"; 32].join(";")
        );
        let d = parse_dictionary(&at_cap).expect("at the caps");
        let MemberValue::InnerList { items, params } = &d[0].value else {
            panic!("inner list")
        };
        assert_eq!((items.len(), params.len()), (32, 1));
    }
}
