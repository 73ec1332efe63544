//! Index keys: byte strings whose order is the order of the typed values they encode.

use std::borrow::Borrow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::tree::Head;

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

    /// The key of the `len` (at most 8) leading bytes of `word` read big-endian.
    #[inline(always)]
    fn from_word(word: u64, len: u8) -> Key {
        let mut buf = [0u8; INLINE];
        buf[..8].copy_from_slice(&word.to_be_bytes());
        Key(Repr::Inline { len, buf })
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
/// `at` is a constant at every call, so the copy is a fixed-size load.
#[inline(always)]
fn word(buf: &[u8; INLINE], at: usize) -> u64 {
    let mut w = [0u8; 8];
    let end = (at + 8).min(INLINE);
    w[..end - at].copy_from_slice(&buf[at..end]);
    u64::from_be_bytes(w)
}

impl Head for Key {
    #[inline(always)]
    fn head(&self) -> u64 {
        match &self.0 {
            Repr::Inline { buf, .. } => word(buf, 0),
            Repr::Heap(b) => b.head(),
        }
    }
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

/// Room for an encoding on the stack before it moves to the heap: enough for the ids,
/// addresses and names keys are made of, so encoding a key to look it up never allocates.
const STACK: usize = 64;

/// Where a key is encoded: a stack buffer that spills to the heap only for a long key.
pub struct KeyBuf {
    /// Bytes in `stack`; the rest of `stack` stays zero, which makes it an inline key's padding.
    len: usize,
    stack: [u8; STACK],
    /// The whole encoding once it outgrew `stack`; empty until then.
    spilled: Vec<u8>,
}

impl KeyBuf {
    #[inline(always)]
    pub(crate) fn new() -> KeyBuf {
        KeyBuf {
            len: 0,
            stack: [0; STACK],
            spilled: Vec::new(),
        }
    }

    #[inline(always)]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if self.spilled.is_empty()
            && let Some(dst) = self.stack.get_mut(self.len..self.len + bytes.len())
        {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.spill(bytes);
    }

    #[inline(always)]
    pub fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    #[inline(never)]
    fn spill(&mut self, bytes: &[u8]) {
        if self.spilled.is_empty() {
            self.spilled.reserve(self.len + bytes.len());
            self.spilled.extend_from_slice(&self.stack[..self.len]);
        }
        self.spilled.extend_from_slice(bytes);
    }

    #[inline(always)]
    pub fn as_bytes(&self) -> &[u8] {
        if self.spilled.is_empty() {
            &self.stack[..self.len]
        } else {
            &self.spilled
        }
    }

    /// The encoding as an inline key, if it is short enough to be one. A fixed-size copy, since
    /// the stack buffer is already zero-padded.
    #[inline(always)]
    pub(crate) fn inline_key(&self) -> Option<Key> {
        if !self.spilled.is_empty() || self.len > INLINE {
            return None;
        }
        let mut buf = [0u8; INLINE];
        buf.copy_from_slice(&self.stack[..INLINE]);
        #[expect(clippy::cast_possible_truncation, reason = "len <= INLINE")]
        Some(Key(Repr::Inline {
            len: self.len as u8,
            buf,
        }))
    }

    pub(crate) fn to_key(&self) -> Key {
        self.inline_key()
            .unwrap_or_else(|| Key(Repr::Heap(Arc::from(self.as_bytes()))))
    }
}

/// Looks `key` up with `get`, handing it the probe's head and the probe: a word-sized key
/// built in registers, a short key inline, a long one as bytes. None of them allocates.
#[inline(always)]
pub(crate) fn lookup<Q: IndexKey + ?Sized, R>(
    key: &Q,
    get_key: impl FnOnce(u64, &Key) -> R,
    get_bytes: impl FnOnce(u64, &[u8]) -> R,
) -> R {
    if let Some((word, len)) = key.as_word() {
        return get_key(word, &Key::from_word(word, len));
    }
    let mut buf = KeyBuf::new();
    key.encode(&mut buf);
    match buf.inline_key() {
        Some(k) => get_key(k.head(), &k),
        None => get_bytes(buf.as_bytes().head(), buf.as_bytes()),
    }
}

/// A value usable as an index key. The encoding must preserve order (big-endian integers, raw
/// string bytes) so that range and prefix queries mean what they say on the typed values.
pub trait IndexKey {
    fn encode(&self, out: &mut KeyBuf);

    /// For a key that encodes to at most 8 bytes: the encoding as the leading bytes of a
    /// big-endian word, and its length. Lookups by such keys then search in registers rather
    /// than reading back an encoding they just wrote (which stalls store forwarding).
    fn as_word(&self) -> Option<(u64, u8)> {
        None
    }

    fn to_key(&self) -> Key {
        let mut buf = KeyBuf::new();
        self.encode(&mut buf);
        buf.to_key()
    }
}

impl<K: IndexKey + ?Sized> IndexKey for &K {
    fn encode(&self, out: &mut KeyBuf) {
        (**self).encode(out);
    }
    #[inline(always)]
    fn as_word(&self) -> Option<(u64, u8)> {
        (**self).as_word()
    }
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl IndexKey for $t {
            fn encode(&self, out: &mut KeyBuf) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            #[inline(always)]
            fn as_word(&self) -> Option<(u64, u8)> {
                const BITS: u32 = <$t>::BITS;
                #[expect(clippy::cast_possible_truncation, reason = "at most 8 bytes")]
                Some((u64::from(*self) << (64 - BITS), (BITS / 8) as u8))
            }
        }
    )*};
}
int_key!(u8, u16, u32, u64);

impl IndexKey for u128 {
    fn encode(&self, out: &mut KeyBuf) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl IndexKey for bool {
    fn encode(&self, out: &mut KeyBuf) {
        out.push(u8::from(*self));
    }
    #[inline(always)]
    fn as_word(&self) -> Option<(u64, u8)> {
        Some((u64::from(*self) << 56, 1))
    }
}

impl IndexKey for str {
    fn encode(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl IndexKey for String {
    fn encode(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl IndexKey for [u8] {
    fn encode(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self);
    }
}

impl IndexKey for Ipv4Addr {
    fn encode(&self, out: &mut KeyBuf) {
        out.extend_from_slice(&self.octets());
    }
    #[inline(always)]
    fn as_word(&self) -> Option<(u64, u8)> {
        Some((u64::from(self.to_bits()) << 32, 4))
    }
}

impl IndexKey for Ipv6Addr {
    fn encode(&self, out: &mut KeyBuf) {
        out.extend_from_slice(&self.octets());
    }
}

/// IPv4 sorts before IPv6; the family byte keeps the two from interleaving.
impl IndexKey for IpAddr {
    fn encode(&self, out: &mut KeyBuf) {
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
            fn encode(&self, out: &mut KeyBuf) {
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
    fn encode_component(&self, out: &mut KeyBuf);
}

macro_rules! fixed_component {
    ($($t:ty),*) => {$(
        impl TupleComponent for $t {
            fn encode_component(&self, out: &mut KeyBuf) {
                self.encode(out);
            }
        }
    )*};
}
fixed_component!(u8, u16, u32, u64, u128, bool, Ipv4Addr, Ipv6Addr, IpAddr);

impl TupleComponent for str {
    fn encode_component(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self.as_bytes());
        out.push(0);
    }
}
impl TupleComponent for String {
    fn encode_component(&self, out: &mut KeyBuf) {
        self.as_str().encode_component(out);
    }
}
impl<K: TupleComponent + ?Sized> TupleComponent for &K {
    fn encode_component(&self, out: &mut KeyBuf) {
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

    proptest::proptest! {
        #[test]
        fn word_keys_are_their_encodings(x in proptest::prelude::any::<u64>()) {
            fn check<K: IndexKey>(k: K) -> Result<(), proptest::test_runner::TestCaseError> {
                let (word, len) = k.as_word().expect("a word-sized key");
                let key = Key::from_word(word, len);
                proptest::prop_assert_eq!(&key, &k.to_key());
                proptest::prop_assert_eq!(key.head(), k.to_key().as_bytes().head());
                Ok(())
            }
            #[expect(clippy::cast_possible_truncation, reason = "any bits will do")]
            {
                check(x)?;
                check(x as u32)?;
                check(x as u16)?;
                check(x as u8)?;
                check(x % 2 == 0)?;
                check(Ipv4Addr::from(x as u32))?;
                check::<&u64>(&x)?;
            }
        }
    }

    #[test]
    fn tuple_strings_are_terminated() {
        assert_ne!(("ab", 1u8).to_key(), ("a", 1u8).to_key());
        assert!(("a", 9u8).to_key() < ("ab", 0u8).to_key());
    }
}
