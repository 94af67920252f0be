//! `kind = "geoip"`: the country, city, location and autonomous system of an `ipaddr`
//! from MaxMind-format (MMDB) database files the user points to: `city_db` (a City,
//! Country or Enterprise database: GeoLite2/GeoIP2, or another vendor's in that
//! format) and `asn_db` (an ASN or ISP database), at least one. Each file is read
//! into memory once, when the inspector is built; a lookup is a walk of its tree,
//! with no network.
//!
//! It writes a `host` section: `ipaddr`, `country` (ISO 3166 code), `as_owner`
//! (`autonomous_system_organization`), and beside them `asn` (the number), `city`
//! (its English name) and `location` (`latitude`, `longitude`, `accuracy_radius` in
//! km) when the database has them. An address in neither database is nothing found.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alertresponder_core::ports::{Inspection, Inspector};
use alertresponder_core::{Attribute, PluginError, Task};
use async_trait::async_trait;
use maxminddb::{geoip2, Reader};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::content::{section, Host};
use super::BuildContext;
use crate::PluginConfigError;

/// The `geoip` inspector's own keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A City, Country or Enterprise database (relative to the config file).
    #[serde(default)]
    pub city_db: Option<PathBuf>,
    /// An ASN (or ISP) database (relative to the config file).
    #[serde(default)]
    pub asn_db: Option<PathBuf>,
}

/// Looks up `ipaddr` attributes in MaxMind-format databases.
pub struct GeoIpInspector {
    name: String,
    timeout: Duration,
    city: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIpInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind =
            |r: &Option<Reader<Vec<u8>>>| r.as_ref().map(|r| r.metadata.database_type.clone());
        f.debug_struct("GeoIpInspector")
            .field("name", &self.name)
            .field("city_db", &kind(&self.city))
            .field("asn_db", &kind(&self.asn))
            .finish()
    }
}

/// Which databases a key takes, by their `database_type`.
struct Expect {
    field: &'static str,
    accepts: &'static [&'static str],
    what: &'static str,
}

const CITY: Expect = Expect {
    field: "city_db",
    accepts: &["City", "Country", "Enterprise"],
    what: "a City, Country or Enterprise database (e.g. GeoLite2-City.mmdb)",
};

const ASN: Expect = Expect {
    field: "asn_db",
    accepts: &["ASN", "ISP"],
    what: "an ASN or ISP database (e.g. GeoLite2-ASN.mmdb)",
};

impl GeoIpInspector {
    /// Reads the databases; an error names the key of a file that is missing, is no
    /// MaxMind DB, or is a database of the other kind.
    pub async fn build(ctx: &BuildContext<'_>, config: Config) -> Result<Self, PluginConfigError> {
        if config.city_db.is_none() && config.asn_db.is_none() {
            return Err(ctx.invalid(
                "city_db",
                "neither city_db nor asn_db is given: give at least one database file",
            ));
        }
        let city = match &config.city_db {
            Some(path) => Some(open(ctx, path, &CITY).await?),
            None => None,
        };
        let asn = match &config.asn_db {
            Some(path) => Some(open(ctx, path, &ASN).await?),
            None => None,
        };
        Ok(Self {
            name: ctx.name.to_string(),
            timeout: ctx.timeout,
            city,
            asn,
        })
    }

    fn lookup(&self, ip: IpAddr) -> Result<Inspection, PluginError> {
        let mut host = Host::default();
        let mut extra = Map::new();
        if let Some(reader) = &self.city {
            if let Some(city) = find::<geoip2::City>(reader, ip, "city_db")? {
                let country = city
                    .country
                    .as_ref()
                    .and_then(|c| c.iso_code)
                    .or_else(|| city.registered_country.as_ref().and_then(|c| c.iso_code));
                host.country.extend(country.map(str::to_string));
                let name = city
                    .city
                    .as_ref()
                    .and_then(|c| c.names.as_ref())
                    .and_then(|n| n.get("en"));
                if let Some(name) = name {
                    extra.insert("city".into(), json!(name));
                }
                if let Some(loc) = &city.location {
                    let mut location = Map::new();
                    if let Some(v) = loc.latitude {
                        location.insert("latitude".into(), json!(v));
                    }
                    if let Some(v) = loc.longitude {
                        location.insert("longitude".into(), json!(v));
                    }
                    if let Some(v) = loc.accuracy_radius {
                        location.insert("accuracy_radius".into(), json!(v));
                    }
                    if !location.is_empty() {
                        extra.insert("location".into(), Value::Object(location));
                    }
                }
            }
        }
        if let Some(reader) = &self.asn {
            if let Some(asn) = find::<geoip2::Asn>(reader, ip, "asn_db")? {
                host.as_owner
                    .extend(asn.autonomous_system_organization.map(str::to_string));
                if let Some(number) = asn.autonomous_system_number {
                    extra.insert("asn".into(), json!(number));
                }
            }
        }
        if host == Host::default() && extra.is_empty() {
            return Ok(Inspection::default());
        }
        host.ipaddr.push(ip.to_string());
        Ok(Inspection {
            sections: vec![section("host", &host, extra)],
            new_attributes: vec![],
        })
    }
}

#[async_trait]
impl Inspector for GeoIpInspector {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, attribute: &Attribute) -> bool {
        attribute.attr_type == "ipaddr"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let value = &task.attribute.value;
        if task.attribute.attr_type != "ipaddr" {
            return Err(PluginError::Skipped(format!(
                "geoip looks up ipaddr attributes, not {:?}",
                bounded(&task.attribute.attr_type)
            )));
        }
        let ip: IpAddr = value.parse().map_err(|_| {
            PluginError::Skipped(format!("{:?} is not an IP address", bounded(value)))
        })?;
        self.lookup(ip)
    }
}

/// Reads the database at `path` (relative to the config file) for `expect.field`.
async fn open(
    ctx: &BuildContext<'_>,
    path: &Path,
    expect: &Expect,
) -> Result<Reader<Vec<u8>>, PluginConfigError> {
    let full = ctx.base_dir.join(path);
    let bytes = tokio::fs::read(&full)
        .await
        .map_err(|e| ctx.invalid(expect.field, format!("cannot read {}: {e}", full.display())))?;
    let reader = Reader::from_source(bytes).map_err(|e| {
        ctx.invalid(
            expect.field,
            format!("{} is not a MaxMind DB file: {e}", full.display()),
        )
    })?;
    let kind = &reader.metadata.database_type;
    if !expect.accepts.iter().any(|a| kind.contains(a)) {
        return Err(ctx.invalid(
            expect.field,
            format!(
                "{} is a {kind:?} database; {} takes {}",
                full.display(),
                expect.field,
                expect.what
            ),
        ));
    }
    Ok(reader)
}

/// The record of `ip` in `reader`, `None` when it has none. An IPv6 address is not in
/// an IPv4-only database, unless it is an IPv4-mapped one (`::ffff:a.b.c.d`).
fn find<'de, T: Deserialize<'de>>(
    reader: &'de Reader<Vec<u8>>,
    ip: IpAddr,
    field: &str,
) -> Result<Option<T>, PluginError> {
    let ip = match ip {
        IpAddr::V6(v6) if reader.metadata.ip_version == 4 => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return Ok(None),
        },
        ip => ip,
    };
    reader
        .lookup::<T>(ip)
        .map_err(|e| PluginError::Failed(format!("{field}: {}", bounded(&e.to_string()))))
}

/// At most 200 characters of `s`, for messages.
fn bounded(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    //! The databases are built here by a small MMDB writer (format 2.0:
    //! <https://maxmind.github.io/MaxMind-DB/>), with records shaped like MaxMind's
    //! GeoIP2-City and GeoLite2-ASN ones: no file of MaxMind's is used.

    use std::net::Ipv6Addr;

    use super::*;
    use crate::secret::Secrets;
    use crate::test_support::task;

    /// Appends `value` in the MMDB data-section encoding.
    fn encode(out: &mut Vec<u8>, value: &Value) {
        fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
            let (marker, extra): (u8, Vec<u8>) = match size {
                0..=28 => (size as u8, vec![]),
                29..=284 => (29, vec![(size - 29) as u8]),
                285..=65_820 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
                _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
            };
            if kind < 8 {
                out.push((kind << 5) | marker);
            } else {
                out.push(marker);
                out.push(kind - 7);
            }
            out.extend(extra);
        }
        fn uint(out: &mut Vec<u8>, kind: u8, n: u64, width: usize) {
            let bytes = n.to_be_bytes();
            let skip = bytes
                .iter()
                .take(8 - 1)
                .take_while(|b| **b == 0)
                .count()
                .max(8 - width);
            control(out, kind, 8 - skip);
            out.extend(&bytes[skip..]);
        }
        match value {
            Value::String(s) => {
                control(out, 2, s.len());
                out.extend(s.as_bytes());
            }
            Value::Number(n) => match n.as_u64() {
                Some(n) if n <= 0xFFFF => uint(out, 5, n, 2),
                Some(n) if n <= 0xFFFF_FFFF => uint(out, 6, n, 4),
                Some(n) => uint(out, 9, n, 8),
                None => {
                    control(out, 3, 8);
                    out.extend(n.as_f64().unwrap().to_be_bytes());
                }
            },
            Value::Bool(b) => control(out, 14, usize::from(*b)),
            Value::Array(items) => {
                control(out, 11, items.len());
                for item in items {
                    encode(out, item);
                }
            }
            Value::Object(map) => {
                control(out, 7, map.len());
                for (k, v) in map {
                    encode(out, &Value::String(k.clone()));
                    encode(out, v);
                }
            }
            Value::Null => panic!("MMDB has no null"),
        }
    }

    /// A search-tree record: another node, no data, or a data offset.
    #[derive(Clone, Copy)]
    enum Rec {
        Node(usize),
        Empty,
        Data(usize),
    }

    /// An MMDB file of `database_type` (24-bit records) mapping each network to its
    /// record. IPv4 networks sit at `::a.b.c.d` in an IPv6 tree, as in MaxMind's;
    /// `ip_version = 4` builds an IPv4-only tree (IPv4 networks only).
    fn mmdb(database_type: &str, ip_version: u16, networks: &[(&str, u8, Value)]) -> Vec<u8> {
        let bits = if ip_version == 4 { 32 } else { 128 };
        let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
        let mut data = Vec::new();
        for (addr, prefix, record) in networks {
            let (value, prefix) = match addr.parse::<IpAddr>().unwrap() {
                IpAddr::V4(v4) if ip_version == 4 => {
                    (u128::from(u32::from(v4)), usize::from(*prefix))
                }
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), usize::from(*prefix) + 96),
                IpAddr::V6(v6) => (u128::from(v6), usize::from(*prefix)),
            };
            let offset = data.len();
            encode(&mut data, record);
            let mut node = 0;
            for i in 0..prefix {
                let bit = ((value >> (bits - 1 - i)) & 1) as usize;
                if i == prefix - 1 {
                    nodes[node][bit] = Rec::Data(offset);
                } else {
                    node = match nodes[node][bit] {
                        Rec::Node(n) => n,
                        _ => {
                            nodes.push([Rec::Empty, Rec::Empty]);
                            let n = nodes.len() - 1;
                            nodes[node][bit] = Rec::Node(n);
                            n
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for rec in node {
                let v = match *rec {
                    Rec::Node(n) => n,
                    Rec::Empty => count,
                    Rec::Data(offset) => count + 16 + offset,
                };
                out.extend(&(v as u32).to_be_bytes()[1..]);
            }
        }
        out.extend([0u8; 16]);
        out.extend(data);
        out.extend(b"\xAB\xCD\xEFMaxMind.com");
        encode(
            &mut out,
            &json!({
                "binary_format_major_version": 2,
                "binary_format_minor_version": 0,
                "build_epoch": 1_790_000_000u64,
                "database_type": database_type,
                "description": {"en": "test database built by alertresponder's tests"},
                "ip_version": ip_version,
                "languages": ["en"],
                "node_count": count,
                "record_size": 24,
            }),
        );
        out
    }

    fn city_db() -> Vec<u8> {
        mmdb(
            "GeoIP2-City",
            6,
            &[
                (
                    "81.2.69.0",
                    24,
                    json!({
                        "city": {"geoname_id": 2643743, "names": {"en": "London", "de": "London"}},
                        "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe"}},
                        "country": {"geoname_id": 2635167, "iso_code": "GB", "is_in_european_union": false,
                                    "names": {"en": "United Kingdom"}},
                        "location": {"accuracy_radius": 10, "latitude": 51.5142, "longitude": -0.0931,
                                     "time_zone": "Europe/London"},
                        "registered_country": {"geoname_id": 6252001, "iso_code": "US", "names": {"en": "United States"}},
                    }),
                ),
                (
                    "2001:218::",
                    32,
                    json!({
                        "country": {"geoname_id": 1861060, "iso_code": "JP", "names": {"en": "Japan"}},
                        "location": {"accuracy_radius": 100, "latitude": 35.68536, "longitude": 139.75309},
                    }),
                ),
            ],
        )
    }

    fn asn_db() -> Vec<u8> {
        mmdb(
            "GeoLite2-ASN",
            6,
            &[
                (
                    "1.128.0.0",
                    11,
                    json!({"autonomous_system_number": 1221, "autonomous_system_organization": "Telstra Pty Ltd"}),
                ),
                (
                    "81.2.69.0",
                    24,
                    json!({"autonomous_system_number": 20712, "autonomous_system_organization": "Andrews & Arnold Ltd"}),
                ),
            ],
        )
    }

    fn country_db_v4() -> Vec<u8> {
        mmdb(
            "GeoLite2-Country",
            4,
            &[(
                "81.2.69.0",
                24,
                json!({"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}}),
            )],
        )
    }

    /// Builds the inspector from files written into a temporary directory, named
    /// relative to it as a config file beside them would.
    async fn build(
        files: &[(&str, Vec<u8>)],
        config: &str,
    ) -> Result<GeoIpInspector, PluginConfigError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let secrets = Secrets::local(dir.path());
        let ctx = BuildContext {
            name: "geoip",
            key: "inspector[1]",
            timeout: Duration::from_secs(1),
            secrets: &secrets,
            base_dir: dir.path(),
        };
        let config: Config = toml::from_str(config).unwrap();
        GeoIpInspector::build(&ctx, config).await
    }

    async fn both() -> GeoIpInspector {
        build(
            &[("city.mmdb", city_db()), ("asn.mmdb", asn_db())],
            "city_db = \"city.mmdb\"\nasn_db = \"asn.mmdb\"",
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn an_address_gets_its_country_city_location_and_as_owner() {
        let geoip = both().await;
        let got = geoip.inspect(&task("81.2.69.142")).await.unwrap();
        assert_eq!(got.new_attributes, vec![]);
        assert_eq!(got.sections.len(), 1);
        assert_eq!(got.sections[0].section_type, "host");
        assert_eq!(
            got.sections[0].content,
            json!({
                "ipaddr": ["81.2.69.142"],
                "country": ["GB"],
                "as_owner": ["Andrews & Arnold Ltd"],
                "asn": 20712,
                "city": "London",
                "location": {"latitude": 51.5142, "longitude": -0.0931, "accuracy_radius": 10},
            })
        );
    }

    #[tokio::test]
    async fn an_address_in_one_database_only_gets_what_that_one_knows() {
        let geoip = both().await;
        let got = geoip.inspect(&task("1.128.0.1")).await.unwrap();
        assert_eq!(
            got.sections[0].content,
            json!({"ipaddr": ["1.128.0.1"], "as_owner": ["Telstra Pty Ltd"], "asn": 1221})
        );
        let got = geoip.inspect(&task("2001:218:1::5")).await.unwrap();
        assert_eq!(
            got.sections[0].content,
            json!({"ipaddr": ["2001:218:1::5"], "country": ["JP"],
                   "location": {"latitude": 35.68536, "longitude": 139.75309, "accuracy_radius": 100}})
        );
    }

    #[tokio::test]
    async fn an_address_in_no_database_is_nothing_found() {
        let geoip = both().await;
        for ip in ["192.0.2.1", "81.2.70.1", "2001:db8::1"] {
            assert_eq!(
                geoip.inspect(&task(ip)).await.unwrap(),
                Inspection::default(),
                "{ip}"
            );
        }
    }

    #[tokio::test]
    async fn a_value_that_is_not_an_ip_address_is_skipped() {
        let geoip = both().await;
        for value in ["example.com", "81.2.69.142/24", "../../etc/passwd", ""] {
            let err = geoip.inspect(&task(value)).await.unwrap_err();
            assert!(
                matches!(err, PluginError::Skipped(ref why) if why.contains("not an IP address")),
                "{err:?}"
            );
        }
        assert!(!geoip.accepts(&crate::test_support::attribute("domain", "example.com")));
    }

    #[tokio::test]
    async fn a_country_database_is_taken_as_city_db_and_ipv6_misses_an_ipv4_only_tree() {
        let geoip = build(
            &[("country.mmdb", country_db_v4())],
            "city_db = \"country.mmdb\"",
        )
        .await
        .unwrap();
        let got = geoip.inspect(&task("81.2.69.1")).await.unwrap();
        assert_eq!(
            got.sections[0].content,
            json!({"ipaddr": ["81.2.69.1"], "country": ["GB"]})
        );
        let got = geoip.inspect(&task("::ffff:81.2.69.1")).await.unwrap();
        assert_eq!(got.sections[0].content["country"], json!(["GB"]));
        // 5102:4500:: starts with the bits of 81.2.69.0: an IPv4-only tree must not match it.
        let v6 = Ipv6Addr::new(0x5102, 0x4501, 0, 0, 0, 0, 0, 1).to_string();
        assert_eq!(
            geoip.inspect(&task(&v6)).await.unwrap(),
            Inspection::default()
        );
    }

    #[tokio::test]
    async fn a_missing_or_wrong_file_names_its_key() {
        let err = build(&[], "city_db = \"nowhere.mmdb\"").await.unwrap_err();
        assert!(err.to_string().contains("inspector[1].city_db"), "{err}");
        assert!(err.to_string().contains("cannot read"), "{err}");

        let err = build(
            &[("asn.mmdb", b"not a database".to_vec())],
            "asn_db = \"asn.mmdb\"",
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("inspector[1].asn_db"), "{err}");
        assert!(err.to_string().contains("not a MaxMind DB"), "{err}");

        let err = build(&[("asn.mmdb", asn_db())], "city_db = \"asn.mmdb\"")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("inspector[1].city_db"), "{err}");
        assert!(err.to_string().contains("GeoLite2-ASN"), "{err}");

        let err = build(&[("city.mmdb", city_db())], "asn_db = \"city.mmdb\"")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("inspector[1].asn_db"), "{err}");

        let err = build(&[], "").await.unwrap_err();
        assert!(err.to_string().contains("inspector[1].city_db"), "{err}");
        assert!(toml::from_str::<Config>("country_db = \"x.mmdb\"").is_err());
    }
}
