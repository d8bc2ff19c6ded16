//! A list of byte strings in one allocation: the bytes end to end, and
//! where each ends. A `oneOf` of 1,000 values costs two allocations, not
//! 1,000 (each with its own header and spare capacity): with thousands of
//! rules, the difference is megabytes in every VM.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByteList {
    bytes: Box<[u8]>,
    ends: Box<[u32]>,
}

impl ByteList {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let item = self.bytes.get(start..end as usize).unwrap_or_default();
            start = end as usize;
            item
        })
    }

    pub fn contains(&self, value: &[u8]) -> bool {
        self.iter().any(|item| item == value)
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for ByteList {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> ByteList {
        let (mut bytes, mut ends) = (Vec::new(), Vec::new());
        for item in items {
            bytes.extend_from_slice(item.as_ref());
            ends.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        }
        ByteList { bytes: bytes.into_boxed_slice(), ends: ends.into_boxed_slice() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_item_and_finds_it() {
        let list: ByteList = ["v2", "", "v10"].into_iter().collect();
        assert_eq!(list.iter().collect::<Vec<_>>(), [&b"v2"[..], b"", b"v10"]);
        assert_eq!(list.len(), 3);
        assert!(list.contains(b"") && list.contains(b"v10") && !list.contains(b"v1"));
        assert!(ByteList::default().is_empty() && !ByteList::default().contains(b""));
    }
}
