use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::serde_util::nullable;

/// An `icmps` entry: the ICMP messages a rule allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpRule {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fields: Vec<IcmpField>,
}

/// One ICMP type of one family (`family` missing means IPv4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(rename = "type")]
    pub icmp_type: IcmpType,
}

/// An ICMP type as written: a number or a name such as `EchoRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IcmpType {
    Number(i64),
    Name(String),
}

/// The address family of an ICMP field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IcmpFamily {
    V4,
    V6,
}

impl IcmpField {
    /// The parsed family; `None` when invalid.
    pub fn parsed_family(&self) -> Option<IcmpFamily> {
        IcmpFamily::parse(self.family.as_deref())
    }
}

impl IcmpFamily {
    /// Parses `IPv4` or `IPv6`; missing or empty means IPv4.
    pub fn parse(text: Option<&str>) -> Option<IcmpFamily> {
        match text.unwrap_or("") {
            "" | "IPv4" => Some(IcmpFamily::V4),
            "IPv6" => Some(IcmpFamily::V6),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IcmpFamily::V4 => "IPv4",
            IcmpFamily::V6 => "IPv6",
        }
    }

    /// The type names Cilium knows for this family, with their numbers.
    pub fn type_names(self) -> &'static [(&'static str, u8)] {
        match self {
            IcmpFamily::V4 => ICMPV4_TYPES,
            IcmpFamily::V6 => ICMPV6_TYPES,
        }
    }
}

impl IcmpType {
    /// The type number for `family`: a number 0-255 (also written as a string) or a name known
    /// for that family. `None` otherwise.
    pub fn code(&self, family: IcmpFamily) -> Option<u8> {
        match self {
            IcmpType::Number(n) => u8::try_from(*n).ok(),
            IcmpType::Name(name)
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name.parse().ok()
            }
            IcmpType::Name(name) => family
                .type_names()
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, code)| *code),
        }
    }
}

impl fmt::Display for IcmpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IcmpType::Number(n) => write!(f, "{n}"),
            IcmpType::Name(name) => f.write_str(name),
        }
    }
}

impl Serialize for IcmpType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IcmpType::Number(n) => serializer.serialize_i64(*n),
            IcmpType::Name(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for IcmpType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntOrName;

        impl Visitor<'_> for IntOrName {
            type Value = IcmpType;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ICMP type number or name")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IcmpType, E> {
                Ok(IcmpType::Number(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IcmpType, E> {
                i64::try_from(v)
                    .map(IcmpType::Number)
                    .map_err(|_| E::custom(format!("ICMP type {v} is too large")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<IcmpType, E> {
                Ok(IcmpType::Name(v.to_owned()))
            }
        }

        deserializer.deserialize_any(IntOrName)
    }
}

/// Cilium's ICMPv4 type names (`pkg/policy/api/icmp.go`).
const ICMPV4_TYPES: &[(&str, u8)] = &[
    ("EchoReply", 0),
    ("DestinationUnreachable", 3),
    ("Redirect", 5),
    ("Echo", 8),
    ("EchoRequest", 8),
    ("RouterAdvertisement", 9),
    ("RouterSelection", 10),
    ("TimeExceeded", 11),
    ("ParameterProblem", 12),
    ("Timestamp", 13),
    ("TimestampReply", 14),
    ("Photuris", 40),
    ("ExtendedEchoRequest", 42),
    ("ExtendedEchoReply", 43),
];

/// Cilium's ICMPv6 type names (`pkg/policy/api/icmp.go`).
const ICMPV6_TYPES: &[(&str, u8)] = &[
    ("DestinationUnreachable", 1),
    ("PacketTooBig", 2),
    ("TimeExceeded", 3),
    ("ParameterProblem", 4),
    ("EchoRequest", 128),
    ("EchoReply", 129),
    ("MulticastListenerQuery", 130),
    ("MulticastListenerReport", 131),
    ("MulticastListenerDone", 132),
    ("RouterSolicitation", 133),
    ("RouterAdvertisement", 134),
    ("NeighborSolicitation", 135),
    ("NeighborAdvertisement", 136),
    ("RedirectMessage", 137),
    ("RouterRenumbering", 138),
    ("ICMPNodeInformationQuery", 139),
    ("ICMPNodeInformationResponse", 140),
    ("InverseNeighborDiscoverySolicitation", 141),
    ("InverseNeighborDiscoveryAdvertisement", 142),
    ("HomeAgentAddressDiscoveryRequest", 144),
    ("HomeAgentAddressDiscoveryReply", 145),
    ("MobilePrefixSolicitation", 146),
    ("MobilePrefixAdvertisement", 147),
    ("DuplicateAddressRequestCodeSuffix", 157),
    ("DuplicateAddressConfirmationCodeSuffix", 158),
    ("ExtendedEchoRequest", 160),
    ("ExtendedEchoReply", 161),
];
