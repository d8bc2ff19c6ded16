//! An ordered header multimap as a proxy keeps it, and the proxy-wasm pair
//! serialization. Written independently of `src/header_map.rs` on purpose:
//! a host that reused the guest's parser would hide the guest's bugs.

/// Header names are stored lower-case (as Envoy's `LowerCaseString`);
/// values are raw bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v.as_ref());
        }
        map
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn pairs(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.pairs
    }

    /// The first value of `name`, as bytes.
    pub fn get_bytes(&self, name: &[u8]) -> Option<&[u8]> {
        self.pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The first value of `name`, decoded lossily for assertions.
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_bytes(name.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    pub fn add(&mut self, name: &[u8], value: &[u8]) {
        self.pairs.push((name.to_ascii_lowercase(), value.to_vec()));
    }

    /// Envoy's `setCopy`: the first occurrence takes the value in place, the
    /// others are removed; a missing header is appended.
    pub fn replace(&mut self, name: &[u8], value: &[u8]) {
        let mut replaced = false;
        self.pairs.retain_mut(|(k, v)| {
            if !k.eq_ignore_ascii_case(name) {
                return true;
            }
            if replaced {
                return false;
            }
            *v = value.to_vec();
            replaced = true;
            true
        });
        if !replaced {
            self.add(name, value);
        }
    }

    pub fn remove(&mut self, name: &[u8]) {
        self.pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// The proxy-wasm map format: `u32 count`, `count` × (`u32 key_len`,
    /// `u32 value_len`), then each `key NUL value NUL`, little endian.
    pub fn serialize(&self) -> Vec<u8> {
        let mut sizes = Vec::with_capacity(4 + 8 * self.pairs.len());
        let mut data = Vec::new();
        sizes.extend_from_slice(&u32::try_from(self.pairs.len()).unwrap().to_le_bytes());
        for (k, v) in &self.pairs {
            sizes.extend_from_slice(&u32::try_from(k.len()).unwrap().to_le_bytes());
            sizes.extend_from_slice(&u32::try_from(v.len()).unwrap().to_le_bytes());
            data.extend_from_slice(k);
            data.push(0);
            data.extend_from_slice(v);
            data.push(0);
        }
        sizes.extend_from_slice(&data);
        sizes
    }

    /// Parses the same format (for `proxy_set_header_map_pairs` and
    /// `proxy_send_local_response` additional headers).
    pub fn deserialize(buf: &[u8]) -> Result<Self, String> {
        let word = |at: usize| -> Result<usize, String> {
            buf.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| format!("map truncated at byte {at}"))
        };
        let count = word(0)?;
        let mut at = 4 + 8 * count;
        let mut map = HeaderMap::new();
        for i in 0..count {
            let (klen, vlen) = (word(4 + 8 * i)?, word(8 + 8 * i)?);
            let key = buf.get(at..at + klen).ok_or("key past the end")?;
            at += klen + 1;
            let value = buf.get(at..at + vlen).ok_or("value past the end")?;
            at += vlen + 1;
            map.add(key, value);
        }
        Ok(map)
    }
}
