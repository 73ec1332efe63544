//! Index keys: byte strings whose order is the order of the typed values they encode.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub(crate) const INLINE: usize = 22;

/// An encoded index key. Short keys (most of them: ids, addresses, names) live inline so that
/// copying a tree node, which copies its keys, never allocates.
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Arc<[u8]>),
}

impl Key {
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            #[expect(clippy::cast_possible_truncation, reason = "len <= INLINE")]
            Key(Repr::Inline {
                len: bytes.len() as u8,
                buf,
            })
        } else {
            Key(Repr::Heap(Arc::from(bytes)))
        }
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Heap(b) => b,
        }
    }
}

impl Borrow<[u8]> for Key {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Inline keys are zero-padded, so two of them are equal exactly when their lengths and whole
/// buffers are, and order like their buffers read as big-endian words (ties broken by length:
/// the shorter is a prefix of the longer). Tree searches compare keys many times per lookup;
/// this keeps those compares to a few word compares instead of `memcmp` calls.
impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Inline { len: la, buf: a }, Repr::Inline { len: lb, buf: b }) => {
                la == lb
                    && word(a, 0) == word(b, 0)
                    && word(a, 8) == word(b, 8)
                    && word(a, 16) == word(b, 16)
            }
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    #[inline(always)]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    #[inline(always)]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (&self.0, &other.0) {
            (Repr::Inline { len: la, buf: a }, Repr::Inline { len: lb, buf: b }) => {
                // The first word settles most compares in a search (it holds a whole u64 key).
                let (x, y) = (word(a, 0), word(b, 0));
                if x != y {
                    return x.cmp(&y);
                }
                word(a, 8)
                    .cmp(&word(b, 8))
                    .then_with(|| word(a, 16).cmp(&word(b, 16)))
                    .then(la.cmp(lb))
            }
            _ => self.cmp_bytes(other),
        }
    }
}

impl Key {
    /// Kept out of line so the search loops inline only the inline-key compare.
    #[inline(never)]
    fn cmp_bytes(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// Eight bytes of a zero-padded inline buffer as a big-endian word: words order like the bytes.
#[inline(always)]
fn word(buf: &[u8; INLINE], at: usize) -> u64 {
    let mut w = [0u8; 8];
    for (i, byte) in w.iter_mut().enumerate() {
        *byte = buf.get(at + i).copied().unwrap_or(0);
    }
    u64::from_be_bytes(w)
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => write!(f, "{s:?}"),
            _ => {
                for b in self.as_bytes() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

thread_local! {
    static ENCODE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encodes `key` into a reused buffer: point lookups and short keys must not allocate.
pub(crate) fn with_encoded<Q: IndexKey + ?Sized, R>(key: &Q, f: impl FnOnce(&[u8]) -> R) -> R {
    ENCODE_SCRATCH.with(|cell| {
        let mut buf = cell.take();
        buf.clear();
        key.encode(&mut buf);
        let r = f(&buf);
        cell.replace(buf);
        r
    })
}

/// A value usable as an index key. The encoding must preserve order (big-endian integers, raw
/// string bytes) so that range and prefix queries mean what they say on the typed values.
pub trait IndexKey {
    fn encode(&self, out: &mut Vec<u8>);

    fn to_key(&self) -> Key {
        with_encoded(self, Key::from_bytes)
    }
}

impl<K: IndexKey + ?Sized> IndexKey for &K {
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out);
    }
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl IndexKey for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
        }
    )*};
}
int_key!(u8, u16, u32, u64, u128);

impl IndexKey for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl IndexKey for str {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl IndexKey for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl IndexKey for [u8] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl IndexKey for Ipv4Addr {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.octets());
    }
}

impl IndexKey for Ipv6Addr {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.octets());
    }
}

/// IPv4 sorts before IPv6; the family byte keeps the two from interleaving.
impl IndexKey for IpAddr {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            IpAddr::V4(a) => {
                out.push(4);
                a.encode(out);
            }
            IpAddr::V6(a) => {
                out.push(6);
                a.encode(out);
            }
        }
    }
}

/// Tuple components are concatenated. A string that is not the last component is terminated
/// by a zero byte so that `("a", 2)` never collides with `("a\x00..", ..)` and prefixes of the
/// leading components still select whole groups.
macro_rules! tuple_key {
    ($($name:ident)+ ; $last:ident) => {
        #[expect(non_snake_case, reason = "macro-generated tuple bindings")]
        impl<$($name: TupleComponent,)+ $last: IndexKey> IndexKey for ($($name,)+ $last,) {
            fn encode(&self, out: &mut Vec<u8>) {
                let ($($name,)+ $last,) = self;
                $($name.encode_component(out);)+
                $last.encode(out);
            }
        }
    };
}
tuple_key!(A; B);
tuple_key!(A B; C);
tuple_key!(A B C; D);

/// A key that can stand before another in a tuple key.
pub trait TupleComponent {
    fn encode_component(&self, out: &mut Vec<u8>);
}

macro_rules! fixed_component {
    ($($t:ty),*) => {$(
        impl TupleComponent for $t {
            fn encode_component(&self, out: &mut Vec<u8>) {
                self.encode(out);
            }
        }
    )*};
}
fixed_component!(u8, u16, u32, u64, u128, bool, Ipv4Addr, Ipv6Addr, IpAddr);

impl TupleComponent for str {
    fn encode_component(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
        out.push(0);
    }
}
impl TupleComponent for String {
    fn encode_component(&self, out: &mut Vec<u8>) {
        self.as_str().encode_component(out);
    }
}
impl<K: TupleComponent + ?Sized> TupleComponent for &K {
    fn encode_component(&self, out: &mut Vec<u8>) {
        (**self).encode_component(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_sort_like_integers() {
        let mut keys: Vec<Key> = [300u32, 2, 70_000, 1]
            .iter()
            .map(IndexKey::to_key)
            .collect();
        keys.sort();
        let back: Vec<u32> = keys
            .iter()
            .map(|k| u32::from_be_bytes(k.as_bytes().try_into().expect("4 bytes")))
            .collect();
        assert_eq!(back, vec![1, 2, 300, 70_000]);
    }

    #[test]
    fn long_keys_go_to_the_heap_and_compare_by_bytes() {
        let long = "x".repeat(100);
        let a = long.to_key();
        let b = Key::from_bytes(long.as_bytes());
        assert_eq!(a, b);
        assert!("a".to_key() < a);
    }

    proptest::proptest! {
        #[test]
        fn keys_order_and_compare_like_their_bytes(
            a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..30),
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..30),
            cut in 0usize..30,
        ) {
            // Also a prefix of `a`, and `a` with trailing zeros: the cases zero padding could
            // confuse.
            let prefix = &a[..cut.min(a.len())];
            let mut padded = a.clone();
            padded.extend([0, 0]);
            for (x, y) in [(&a[..], &b[..]), (&a[..], prefix), (&a[..], &padded[..])] {
                let (kx, ky) = (Key::from_bytes(x), Key::from_bytes(y));
                proptest::prop_assert_eq!(kx.cmp(&ky), x.cmp(y));
                proptest::prop_assert_eq!(ky.cmp(&kx), y.cmp(x));
                proptest::prop_assert_eq!(kx == ky, x == y);
            }
        }
    }

    #[test]
    fn tuple_strings_are_terminated() {
        assert_ne!(("ab", 1u8).to_key(), ("a", 1u8).to_key());
        assert!(("a", 9u8).to_key() < ("ab", 0u8).to_key());
    }
}
