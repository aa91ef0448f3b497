//! A session's attributes: [`AttrValue`], one value, and [`AttrMap`], the attributes as a
//! vector sorted by name.
//!
//! Why a vector: sessions hold few attributes (the bench app: one), and a node holds every
//! session of a DeltaManager context, so the per-session overhead matters: a `BTreeMap` leaf
//! reserves 11 key/value slots (~640 B for one attribute), this holds exactly `len` (56 B
//! each). Lookups are binary searches; inserts and removals shift a short vector. It
//! serializes as a map, like the `BTreeMap` it replaced, so the wire form is unchanged.
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An attribute value. JSON travels as text because the wire codec (bincode) is not
/// self-describing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    /// One byte string on the wire (bincode copies it in one piece, not byte by byte).
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    Json(String),
}

impl AttrValue {
    pub fn json(v: &serde_json::Value) -> Self {
        AttrValue::Json(v.to_string())
    }
    /// The JSON value, if this is a JSON attribute holding valid JSON.
    pub fn as_json(&self) -> Option<serde_json::Value> {
        match self {
            AttrValue::Json(s) => serde_json::from_str(s).ok(),
            AttrValue::Bytes(_) => None,
        }
    }
    /// Bytes counted against the limits.
    pub fn size(&self) -> usize {
        match self {
            AttrValue::Bytes(b) => b.len(),
            AttrValue::Json(s) => s.len(),
        }
    }
}

#[derive(Clone, Default, PartialEq)]
pub struct AttrMap {
    /// Sorted by name, names unique; capacity kept equal to length (see `insert`).
    items: Vec<(String, AttrValue)>,
}

impl AttrMap {
    pub fn new() -> Self {
        AttrMap::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.items.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.find(name).ok().map(|i| &self.items[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name`; returns the previous value.
    pub fn insert(&mut self, name: String, value: AttrValue) -> Option<AttrValue> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.items[i].1, value)),
            Err(i) => {
                // Exact growth: a Vec would otherwise reserve 4 slots for the first one.
                self.items.reserve_exact(1);
                self.items.insert(i, (name, value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<AttrValue> {
        let i = self.find(name).ok()?;
        let (_, v) = self.items.remove(i);
        self.items.shrink_to_fit();
        Some(v)
    }

    pub fn clear(&mut self) {
        self.items = Vec::new();
    }

    /// `(name, value)` in name order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &AttrValue)> + '_ {
        self.items.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + '_ {
        self.items.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &AttrValue> + '_ {
        self.items.iter().map(|(_, v)| v)
    }
}

impl fmt::Debug for AttrMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, AttrValue)> for AttrMap {
    fn from_iter<I: IntoIterator<Item = (String, AttrValue)>>(iter: I) -> Self {
        let mut m = AttrMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<'a> IntoIterator for &'a AttrMap {
    type Item = (&'a String, &'a AttrValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, AttrValue)>,
        fn(&'a (String, AttrValue)) -> (&'a String, &'a AttrValue),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for AttrMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.items.len()))?;
        for (k, v) in &self.items {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = AttrMap;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute names to values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<AttrMap, A::Error> {
        // The size hint comes from the wire: cap it, the real entries still all go in.
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0).min(1024));
        while let Some((k, v)) = access.next_entry::<String, AttrValue>()? {
            items.push((k, v));
        }
        // A well-formed sender sends names sorted and unique; repair anything else
        // (a later duplicate wins, as with the BTreeMap this replaced).
        if !items.windows(2).all(|w| w[0].0 < w[1].0) {
            return Ok(items.into_iter().collect());
        }
        items.shrink_to_fit();
        Ok(AttrMap { items })
    }
}

impl<'de> Deserialize<'de> for AttrMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AttrMap, D::Error> {
        d.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: &[u8]) -> AttrValue {
        AttrValue::Bytes(x.to_vec())
    }

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut m = AttrMap::new();
        assert_eq!(m.insert("b".into(), b(b"1")), None);
        assert_eq!(m.insert("a".into(), b(b"2")), None);
        assert_eq!(m.insert("c".into(), b(b"3")), None);
        assert_eq!(m.insert("b".into(), b(b"4")), Some(b(b"1")));
        let keys: Vec<&String> = m.keys().collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(m.get("b"), Some(&b(b"4")));
        assert_eq!(m.remove("a"), Some(b(b"2")));
        assert_eq!(m.remove("a"), None);
        assert!(!m.contains_key("a") && m.contains_key("c"));
        assert_eq!(m.len(), 2);
        assert_eq!(m.items.capacity(), 2, "no spare slots");
    }

    #[test]
    fn wire_form_is_the_btreemap_one() {
        let m: AttrMap = [("y".to_string(), b(b"1")), ("x".to_string(), b(b"22"))]
            .into_iter()
            .collect();
        let old: std::collections::BTreeMap<String, AttrValue> =
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let cfg = bincode::config::standard();
        let ours = bincode::serde::encode_to_vec(&m, cfg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ours,
            bincode::serde::encode_to_vec(&old, cfg).unwrap_or_else(|e| panic!("{e}"))
        );
        let (back, _): (AttrMap, usize) =
            bincode::serde::decode_from_slice(&ours, cfg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, m);
    }

    #[test]
    fn unsorted_or_duplicate_names_from_the_wire_are_repaired() {
        let json = r#"{"b":{"Json":"1"},"a":{"Json":"2"},"b":{"Json":"3"}}"#;
        let m: AttrMap = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<&String> = m.keys().collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(m.get("b"), Some(&AttrValue::Json("3".into())));
    }
}
