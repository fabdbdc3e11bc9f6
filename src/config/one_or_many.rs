//! Lists that may also be given as one bare string: an environment variable holds a single
//! text (`LOGINWITH_SERVER__TRUSTED_PROXIES=10.0.0.1`), a file may hold a list. Blank text
//! means an empty list. Neither `serde_with::OneOrMany` nor figment reads blank as none, so
//! every such key goes through this one reader.

use serde::{Deserializer, de};

/// Reads a list, or one entry as a bare string, with each entry read by `parse`: the
/// `String` it returns on failure is the problem people see, with the key.
pub(super) fn one_or_many<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
{
    struct List<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }

    impl<'de, T> de::Visitor<'de> for List<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Vec<T>, E> {
            if value.trim().is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![(self.parse)(value).map_err(E::custom)?])
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = seq.next_element::<String>()? {
                entries.push((self.parse)(&entry).map_err(de::Error::custom)?);
            }
            Ok(entries)
        }
    }

    deserializer.deserialize_any(List { expecting, parse })
}
