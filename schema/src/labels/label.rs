use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Source;

/// A label: `source:key=value`. The value may be empty (`reserved:host`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub source: Source,
    pub key: String,
    pub value: String,
}

/// Why a string is not a label or a selector key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label is empty")]
    Empty,
    #[error("{text:?} has an empty key")]
    EmptyKey { text: String },
    #[error("unknown label source {prefix:?}")]
    UnknownSource { prefix: String },
}

impl Label {
    pub fn new(source: Source, key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            source,
            key: key.into(),
            value: value.into(),
        }
    }

    /// Parses `source:key=value`, `source:key` or `key=value`; without a source the label is
    /// `unspec` (use [`Label::parse_with_default_source`] for another default).
    pub fn parse(text: &str) -> Result<Self, LabelError> {
        Self::parse_with_default_source(text, Source::Unspec)
    }

    /// Like [`Label::parse`], with `default` as the source of an unprefixed label.
    pub fn parse_with_default_source(text: &str, default: Source) -> Result<Self, LabelError> {
        let (source, rest) = split_source(text, default)?;
        let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
        if key.is_empty() {
            return Err(LabelError::EmptyKey {
                text: text.to_owned(),
            });
        }
        Ok(Self::new(source, key, value))
    }
}

/// Splits a leading `source:` off `text`. A `:` only separates a source when it comes before
/// any `=` (so `app=a:b` is an unprefixed label whose value contains a colon).
pub(super) fn split_source(text: &str, default: Source) -> Result<(Source, &str), LabelError> {
    if text.is_empty() {
        return Err(LabelError::Empty);
    }
    let colon = text.find(':');
    let equals = text.find('=');
    match colon {
        Some(c) if equals.is_none_or(|e| c < e) => Ok((text[..c].parse()?, &text[c + 1..])),
        _ => Ok((default, text)),
    }
}

impl FromStr for Label {
    type Err = LabelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.key)?;
        if !self.value.is_empty() {
            write!(f, "={}", self.value)?;
        }
        Ok(())
    }
}

/// Serialized as Cilium does: `{key, value, source}`.
impl Serialize for Label {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Label", 3)?;
        state.serialize_field("key", &self.key)?;
        state.serialize_field("value", &self.value)?;
        state.serialize_field("source", self.source.as_str())?;
        state.end()
    }
}

/// Read from a string (`"k8s:app=web"`) or from `{key, value, source}` with `value` and
/// `source` optional (`unspec` when missing), as Cilium's rule `labels` accept.
impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LabelVisitor)
    }
}

struct LabelVisitor;

impl<'de> Visitor<'de> for LabelVisitor {
    type Value = Label;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a label string or a map with key, value and source")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Label, E> {
        Label::parse(text).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Label, A::Error> {
        let mut key = None;
        let mut value = None;
        let mut source = None;
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "key" => key = Some(map.next_value::<String>()?),
                "value" => value = map.next_value::<Option<String>>()?,
                "source" => source = map.next_value::<Option<String>>()?,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let key = key.ok_or_else(|| de::Error::missing_field("key"))?;
        if key.is_empty() {
            return Err(de::Error::custom(LabelError::EmptyKey { text: key }));
        }
        let source = match source.as_deref() {
            None | Some("") => Source::Unspec,
            Some(text) => text.parse().map_err(de::Error::custom)?,
        };
        Ok(Label::new(source, key, value.unwrap_or_default()))
    }
}
