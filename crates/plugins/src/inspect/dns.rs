//! `kind = "dns"`: forward (A, AAAA, CNAME) lookups of a `domain` and reverse (PTR)
//! lookups of an `ipaddr`, with `hickory-resolver`, against the configured
//! `nameservers` or the system's (`/etc/resolv.conf`; on Lambda, the VPC resolver).
//!
//! It writes a `host` section (`ipaddr`: the addresses, `hostname`: the PTR names or
//! CNAME targets) and feeds what it learned back: resolved addresses as `ipaddr`
//! attributes, PTR and CNAME names as `domain` attributes (deduplicated, at most
//! [`MAX_NEW_ATTRIBUTES`]).
//!
//! Names are attacker-written, twice: the alert's `domain` value, and the PTR and
//! CNAME answers of a zone the attacker may own. A value that is not a valid DNS name
//! (longer than 253 characters, a label longer than 63, a space, a `/`...) is skipped
//! and never sent; an answer name that is not valid is not fed back. Every name is
//! looked up as absolute (FQDN): the search domains of `resolv.conf` are never
//! appended, so `internal` cannot become `internal.corp.example`. The hosts file is
//! not read: the answer is what DNS says.
//!
//! NXDOMAIN or no records is nothing found; SERVFAIL, REFUSED and network errors are
//! failures; no answer within the inspector's `timeout` is a timeout. The resolver
//! caches answers for their TTL, across tasks.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use alertresponder_core::ports::{Inspection, Inspector};
use alertresponder_core::{Attribute, PluginError, Task};
use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Name, ResolveError, TokioResolver};
use serde::Deserialize;
use serde_json::{json, Map};

use super::content::{section, Host};
use super::BuildContext;
use crate::PluginConfigError;

/// At most this many attributes are fed back from one answer.
pub const MAX_NEW_ATTRIBUTES: usize = 32;

/// The longest error message kept from the resolver.
const MAX_MESSAGE: usize = 300;

/// The transport to the name servers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP, with TCP when an answer is truncated.
    #[default]
    Udp,
    /// TCP only.
    Tcp,
}

/// The `dns` inspector's own keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name servers as `ip` or `ip:port` (`[v6]:port`), port 53 by default; by
    /// default the system's (`/etc/resolv.conf`).
    #[serde(default)]
    pub nameservers: Option<Vec<String>>,
    /// `udp` (default) or `tcp`.
    #[serde(default)]
    pub protocol: Option<Transport>,
}

/// Looks up `domain` and `ipaddr` attributes in DNS.
pub struct DnsInspector {
    name: String,
    timeout: Duration,
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsInspector")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("nameservers", &self.resolver.config().name_servers())
            .finish()
    }
}

impl DnsInspector {
    /// Builds the resolver: the configured name servers, or the system's.
    pub async fn build(ctx: &BuildContext<'_>, config: Config) -> Result<Self, PluginConfigError> {
        let transport = config.protocol.unwrap_or_default();
        let protocols: &[Protocol] = match transport {
            Transport::Udp => &[Protocol::Udp, Protocol::Tcp],
            Transport::Tcp => &[Protocol::Tcp],
        };
        let resolver_config = match &config.nameservers {
            Some(list) => {
                if list.is_empty() {
                    return Err(ctx.invalid(
                        "nameservers",
                        "is empty: name at least one server, or leave it out for the system's",
                    ));
                }
                let mut servers = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    let addr = parse_nameserver(s).ok_or_else(|| {
                        ctx.invalid(
                            &format!("nameservers[{i}]"),
                            format!("{s:?} is not an IP address with an optional port (\"10.0.0.2\", \"127.0.0.1:5353\", \"[::1]:53\")"),
                        )
                    })?;
                    for p in protocols {
                        servers.push(NameServerConfig::new(addr, *p));
                    }
                }
                ResolverConfig::from_parts(None, vec![], servers)
            }
            None => {
                let (system, _) =
                    hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                        ctx.invalid(
                            "nameservers",
                            format!("not given, and the system's cannot be read: {e}"),
                        )
                    })?;
                system_servers(&system, protocols).ok_or_else(|| {
                    ctx.invalid(
                        "nameservers",
                        "not given, and the system names none (/etc/resolv.conf)",
                    )
                })?
            }
        };
        let mut opts = ResolverOpts::default();
        opts.timeout = ctx.timeout;
        opts.attempts = 1;
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.try_tcp_on_error = false;
        let resolver =
            TokioResolver::builder_with_config(resolver_config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
        Ok(Self {
            name: ctx.name.to_string(),
            timeout: ctx.timeout,
            resolver,
        })
    }

    async fn forward(&self, task: &Task) -> Result<Inspection, PluginError> {
        let value = &task.attribute.value;
        let name = dns_name(value).map_err(|why| {
            PluginError::Skipped(format!(
                "{:?} is not a valid DNS name: {why}",
                bounded(value)
            ))
        })?;
        let (a, aaaa, cname) = tokio::join!(
            self.resolver.lookup(name.clone(), RecordType::A),
            self.resolver.lookup(name.clone(), RecordType::AAAA),
            self.resolver.lookup(name.clone(), RecordType::CNAME),
        );
        let mut found = Found::default();
        let mut errors = Vec::new();
        for (rtype, answer) in [("A", a), ("AAAA", aaaa), ("CNAME", cname)] {
            match answer {
                Ok(lookup) => {
                    for record in lookup.records() {
                        match record.data() {
                            RData::A(a) => found.address(IpAddr::V4(a.0)),
                            RData::AAAA(a) => found.address(IpAddr::V6(a.0)),
                            RData::CNAME(c) => found.name(&c.0),
                            _ => {}
                        }
                    }
                }
                Err(e) => {
                    if let Some(err) = self.outcome(&e) {
                        errors.push((rtype, err));
                    }
                }
            }
        }
        let host = Host {
            ipaddr: found.addresses.iter().map(IpAddr::to_string).collect(),
            hostname: found.names.clone(),
            ..Host::default()
        };
        self.answer(task, found, errors, host, &name)
    }

    async fn reverse(&self, task: &Task) -> Result<Inspection, PluginError> {
        let value = &task.attribute.value;
        let ip: IpAddr = value.parse().map_err(|_| {
            PluginError::Skipped(format!("{:?} is not an IP address", bounded(value)))
        })?;
        let mut found = Found::default();
        let mut errors = Vec::new();
        match self.resolver.reverse_lookup(ip).await {
            Ok(lookup) => {
                for ptr in lookup.iter() {
                    found.name(&ptr.0);
                }
            }
            Err(e) => {
                if let Some(err) = self.outcome(&e) {
                    errors.push(("PTR", err));
                }
            }
        }
        let host = Host {
            ipaddr: vec![ip.to_string()],
            hostname: found.names.clone(),
            ..Host::default()
        };
        let query = Name::from(ip);
        self.answer(task, found, errors, host, &query)
    }

    /// `None` when the error says there is nothing (NXDOMAIN, no records), or the
    /// failure to report.
    fn outcome(&self, e: &ResolveError) -> Option<PluginError> {
        if let Some(proto) = e.proto() {
            match proto.kind() {
                ProtoErrorKind::NoRecordsFound {
                    response_code: ResponseCode::NXDomain | ResponseCode::NoError,
                    ..
                } => return None,
                ProtoErrorKind::NoRecordsFound { response_code, .. } => {
                    return Some(PluginError::Failed(format!(
                        "the name server answered {response_code}"
                    )));
                }
                ProtoErrorKind::Timeout => return Some(PluginError::TimedOut(self.timeout)),
                _ => {}
            }
        }
        Some(PluginError::Failed(bounded(&e.to_string())))
    }

    /// The inspection: a `host` section and the fed-back attributes when anything was
    /// found (failed record types listed beside it in `errors`), otherwise the failure
    /// (a timeout first), otherwise nothing found.
    fn answer(
        &self,
        task: &Task,
        found: Found,
        errors: Vec<(&str, PluginError)>,
        host: Host,
        query: &Name,
    ) -> Result<Inspection, PluginError> {
        if found.is_empty() {
            let mut first = None;
            for (_, err) in errors {
                if matches!(err, PluginError::TimedOut(_)) {
                    return Err(err);
                }
                first.get_or_insert(err);
            }
            return match first {
                Some(err) => Err(err),
                None => Ok(Inspection::default()),
            };
        }
        let mut extra = Map::new();
        extra.insert("query".into(), json!(query.to_ascii()));
        if !errors.is_empty() {
            let errs: Map<_, _> = errors
                .iter()
                .map(|(t, e)| ((*t).to_string(), json!(e.to_string())))
                .collect();
            extra.insert("errors".into(), serde_json::Value::Object(errs));
        }
        let new_attributes = found.attributes(&task.attribute);
        Ok(Inspection {
            sections: vec![section("host", &host, extra)],
            new_attributes,
        })
    }
}

#[async_trait]
impl Inspector for DnsInspector {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, attribute: &Attribute) -> bool {
        matches!(attribute.attr_type.as_str(), "domain" | "ipaddr")
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let lookup = async {
            match task.attribute.attr_type.as_str() {
                "domain" => self.forward(task).await,
                "ipaddr" => self.reverse(task).await,
                other => Err(PluginError::Skipped(format!(
                    "dns looks up domain and ipaddr attributes, not {}",
                    bounded(other)
                ))),
            }
        };
        tokio::time::timeout(self.timeout, lookup)
            .await
            .unwrap_or(Err(PluginError::TimedOut(self.timeout)))
    }
}

/// What the answers held, deduplicated, in order.
#[derive(Debug, Default)]
struct Found {
    addresses: Vec<IpAddr>,
    /// Valid names, lowercase, without the final dot.
    names: Vec<String>,
}

impl Found {
    fn address(&mut self, ip: IpAddr) {
        if !self.addresses.contains(&ip) {
            self.addresses.push(ip);
        }
    }

    /// Keeps an answer's name when it is a valid DNS name (answers are attacker-written
    /// too when the attacker owns the zone).
    fn name(&mut self, name: &Name) {
        let text = name.to_ascii();
        let text = text.strip_suffix('.').unwrap_or(&text).to_ascii_lowercase();
        if dns_name(&text).is_ok() && !self.names.contains(&text) {
            self.names.push(text);
        }
    }

    fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.names.is_empty()
    }

    /// The addresses as `ipaddr` and the names as `domain` attributes, not the one
    /// looked up, at most [`MAX_NEW_ATTRIBUTES`].
    fn attributes(&self, source: &Attribute) -> Vec<Attribute> {
        let context = if source.context.is_empty() {
            vec!["remote".to_string()]
        } else {
            source.context.clone()
        };
        let key = format!("resolved from {}", source.value);
        let looked_up = source.value.trim_end_matches('.').to_ascii_lowercase();
        let addresses = self.addresses.iter().map(|ip| ("ipaddr", ip.to_string()));
        let names = self.names.iter().map(|n| ("domain", n.clone()));
        addresses
            .chain(names)
            .filter(|(_, value)| value.to_ascii_lowercase() != looked_up)
            .take(MAX_NEW_ATTRIBUTES)
            .map(|(attr_type, value)| Attribute {
                attr_type: attr_type.to_string(),
                key: key.clone(),
                value,
                context: context.clone(),
                timestamp: None,
            })
            .collect()
    }
}

/// `value` as an absolute DNS name, or why it is not one. Accepts letters, digits,
/// `-` and `_` in labels of 1 to 63 characters, 253 characters in all, one optional
/// final dot; refuses an IP address.
fn dns_name(value: &str) -> Result<Name, String> {
    let bare = value.strip_suffix('.').unwrap_or(value);
    if bare.is_empty() {
        return Err("it is empty".into());
    }
    if bare.len() > 253 {
        return Err(format!(
            "it is {} characters long (at most 253)",
            bare.len()
        ));
    }
    if bare.parse::<IpAddr>().is_ok() {
        return Err("it is an IP address".into());
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err("it has an empty label".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "a label is {} characters long (at most 63)",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "it holds {c:?} (letters, digits, '-' and '_' only; IDNs in xn-- form)"
            ));
        }
    }
    let mut name = Name::from_ascii(bare).map_err(|e| bounded(&e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The system's name servers over `protocols`, without its domain and search list
/// (attacker names are looked up as they are); `None` when it names none.
fn system_servers(system: &ResolverConfig, protocols: &[Protocol]) -> Option<ResolverConfig> {
    let servers: Vec<NameServerConfig> = system
        .name_servers()
        .iter()
        .filter(|ns| protocols.contains(&ns.protocol))
        .cloned()
        .collect();
    if servers.is_empty() {
        return None;
    }
    Some(ResolverConfig::from_parts(None, vec![], servers))
}

/// `ip` or `ip:port` (port 53 by default).
fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

/// At most [`MAX_MESSAGE`] characters of `s`, for messages.
fn bounded(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX_MESSAGE).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::str::FromStr;
    use std::sync::{Arc, Mutex};

    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use tokio::net::UdpSocket;

    use super::*;
    use crate::secret::Secrets;
    use crate::test_support::attribute;

    /// A name server on 127.0.0.1 answering from a fixed zone, and what it was asked.
    struct Server {
        addr: SocketAddr,
        asked: Arc<Mutex<Vec<(String, RecordType)>>>,
    }

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    /// The zone: `www.example.test` is a CNAME to `web.example.test` (192.0.2.10,
    /// 2001:db8::10); 192.0.2.10 has the PTR `web.example.test`; 192.0.2.66 has a PTR
    /// that is no valid name; `broken.example.test` fails (SERVFAIL); `empty.example.test`
    /// exists with no records; the rest does not exist.
    fn zone(qname: &Name, qtype: RecordType) -> (ResponseCode, Vec<Record>) {
        let www = name("www.example.test.");
        let web = name("web.example.test.");
        let web_a = Record::from_rdata(web.clone(), 60, RData::A(A::new(192, 0, 2, 10)));
        let web_aaaa = Record::from_rdata(
            web.clone(),
            60,
            RData::AAAA(AAAA::from_str("2001:db8::10").unwrap()),
        );
        let cname = Record::from_rdata(www.clone(), 60, RData::CNAME(CNAME(web.clone())));
        let q = qname.to_ascii().to_ascii_lowercase();
        match (q.as_str(), qtype) {
            ("www.example.test.", RecordType::CNAME) => (ResponseCode::NoError, vec![cname]),
            ("www.example.test.", RecordType::A) => (ResponseCode::NoError, vec![cname, web_a]),
            ("www.example.test.", RecordType::AAAA) => {
                (ResponseCode::NoError, vec![cname, web_aaaa])
            }
            ("web.example.test.", RecordType::A) => (ResponseCode::NoError, vec![web_a]),
            ("web.example.test.", RecordType::AAAA) => (ResponseCode::NoError, vec![web_aaaa]),
            ("web.example.test." | "empty.example.test.", _) => (ResponseCode::NoError, vec![]),
            ("10.2.0.192.in-addr.arpa.", RecordType::PTR) => (
                ResponseCode::NoError,
                vec![Record::from_rdata(qname.clone(), 60, RData::PTR(PTR(web)))],
            ),
            ("66.2.0.192.in-addr.arpa.", RecordType::PTR) => (
                ResponseCode::NoError,
                vec![
                    Record::from_rdata(
                        qname.clone(),
                        60,
                        RData::PTR(PTR(raw(&[b"a b/c", b"example", b"test"]))),
                    ),
                    Record::from_rdata(
                        qname.clone(),
                        60,
                        RData::PTR(PTR(name("ok.example.test."))),
                    ),
                ],
            ),
            ("broken.example.test.", _) => (ResponseCode::ServFail, vec![]),
            ("half.example.test.", RecordType::A) => (
                ResponseCode::NoError,
                vec![Record::from_rdata(
                    qname.clone(),
                    60,
                    RData::A(A::new(192, 0, 2, 20)),
                )],
            ),
            ("half.example.test.", RecordType::AAAA) => (ResponseCode::ServFail, vec![]),
            ("half.example.test.", _) => (ResponseCode::NoError, vec![]),
            _ => (ResponseCode::NXDomain, vec![]),
        }
    }

    /// A name of raw labels, as a hostile zone can serve it.
    fn raw(labels: &[&[u8]]) -> Name {
        let mut name = Name::from_labels(labels.iter().copied()).unwrap();
        name.set_fqdn(true);
        name
    }

    async fn server() -> Server {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut response = Message::new();
                response
                    .set_id(request.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(request.op_code())
                    .set_recursion_desired(request.recursion_desired())
                    .set_recursion_available(true)
                    .set_authoritative(true);
                for query in request.queries() {
                    log.lock()
                        .unwrap()
                        .push((query.name().to_ascii(), query.query_type()));
                    let (code, records) = zone(query.name(), query.query_type());
                    response.add_query(query.clone());
                    response.set_response_code(code);
                    response.add_answers(records);
                }
                let bytes = response.to_vec().unwrap();
                let _ = socket.send_to(&bytes, peer).await;
            }
        });
        Server { addr, asked }
    }

    async fn inspector(nameserver: SocketAddr, timeout: Duration) -> DnsInspector {
        let secrets = Secrets::local(".");
        let ctx = BuildContext {
            name: "dns",
            key: "inspector[0]",
            timeout,
            secrets: &secrets,
            base_dir: Path::new("."),
        };
        let config = Config {
            nameservers: Some(vec![nameserver.to_string()]),
            protocol: None,
        };
        DnsInspector::build(&ctx, config).await.unwrap()
    }

    fn task(attr_type: &str, value: &str) -> Task {
        Task {
            report_id: "rep-1".into(),
            attribute: attribute(attr_type, value),
            depth: 0,
            review_at: None,
        }
    }

    #[tokio::test]
    async fn a_domain_resolves_to_its_addresses_and_its_cname_target() {
        let server = server().await;
        let dns = inspector(server.addr, Duration::from_secs(5)).await;
        let got = dns
            .inspect(&task("domain", "www.example.test"))
            .await
            .unwrap();

        assert_eq!(got.sections.len(), 1);
        assert_eq!(got.sections[0].section_type, "host");
        assert_eq!(
            got.sections[0].content,
            json!({
                "ipaddr": ["192.0.2.10", "2001:db8::10"],
                "hostname": ["web.example.test"],
                "query": "www.example.test.",
            })
        );
        let fed: Vec<_> = got
            .new_attributes
            .iter()
            .map(|a| (a.attr_type.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            fed,
            [
                ("ipaddr", "192.0.2.10"),
                ("ipaddr", "2001:db8::10"),
                ("domain", "web.example.test")
            ]
        );
        for a in &got.new_attributes {
            assert_eq!(a.key, "resolved from www.example.test");
            assert_eq!(a.context, ["remote"]);
        }
    }

    #[tokio::test]
    async fn names_are_looked_up_as_absolute_without_search_domains() {
        let server = server().await;
        let dns = inspector(server.addr, Duration::from_secs(5)).await;
        let got = dns.inspect(&task("domain", "internal")).await.unwrap();
        assert_eq!(got, Inspection::default());
        let asked = server.asked.lock().unwrap().clone();
        assert!(!asked.is_empty());
        assert!(asked.iter().all(|(n, _)| n == "internal."), "{asked:?}");
    }

    #[tokio::test]
    async fn an_address_resolves_to_its_ptr_name_fed_back_as_a_domain() {
        let server = server().await;
        let dns = inspector(server.addr, Duration::from_secs(5)).await;
        let got = dns.inspect(&task("ipaddr", "192.0.2.10")).await.unwrap();

        assert_eq!(
            got.sections[0].content,
            json!({
                "ipaddr": ["192.0.2.10"],
                "hostname": ["web.example.test"],
                "query": "10.2.0.192.in-addr.arpa.",
            })
        );
        assert_eq!(got.new_attributes.len(), 1);
        assert_eq!(got.new_attributes[0].attr_type, "domain");
        assert_eq!(got.new_attributes[0].value, "web.example.test");
        assert_eq!(got.new_attributes[0].key, "resolved from 192.0.2.10");
    }

    #[tokio::test]
    async fn a_ptr_answer_that_is_no_valid_name_is_not_fed_back() {
        let server = server().await;
        let dns = inspector(server.addr, Duration::from_secs(5)).await;
        let got = dns.inspect(&task("ipaddr", "192.0.2.66")).await.unwrap();
        let fed: Vec<_> = got
            .new_attributes
            .iter()
            .map(|a| a.value.as_str())
            .collect();
        assert_eq!(fed, ["ok.example.test"]);
        assert_eq!(
            got.sections[0].content["hostname"],
            json!(["ok.example.test"])
        );
    }

    #[tokio::test]
    async fn nxdomain_and_a_name_without_records_are_nothing_found() {
        let server = server().await;
        let dns = inspector(server.addr, Duration::from_secs(5)).await;
        for value in ["nowhere.example.test", "empty.example.test."] {
            let got = dns.inspect(&task("domain", value)).await.unwrap();
            assert_eq!(got, Inspection::default(), "{value}");
        }
        let got = dns.inspect(&task("ipaddr", "198.51.100.7")).await.unwrap();
        assert_eq!(got, Inspection::default());
    }

    #[tokio::test]
    async fn servfail_is_a_failure_not_an_empty_answer() {
        let server = server().await;
        let dns = inspector(server.addr, Duration::from_secs(5)).await;
        let err = dns
            .inspect(&task("domain", "broken.example.test"))
            .await
            .unwrap_err();
        match err {
            PluginError::Failed(msg) => assert!(msg.contains("Server Failure"), "{msg}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_failed_record_type_is_listed_beside_what_the_others_found() {
        let server = server().await;
        let dns = inspector(server.addr, Duration::from_secs(5)).await;
        let got = dns
            .inspect(&task("domain", "half.example.test"))
            .await
            .unwrap();
        let content = &got.sections[0].content;
        assert_eq!(content["ipaddr"], json!(["192.0.2.20"]));
        let why = content["errors"]["AAAA"].as_str().unwrap();
        assert!(why.contains("Server Failure"), "{why}");
        assert_eq!(got.new_attributes.len(), 1);
    }

    #[tokio::test]
    async fn invalid_names_are_skipped_and_never_sent() {
        let server = server().await;
        let dns = inspector(server.addr, Duration::from_secs(5)).await;
        let long_label = format!("{}.example.test", "a".repeat(64));
        let long_name = ["abcdefghij"; 26].join(".");
        for value in [
            "evil.example.test/../x",
            "two words.example.test",
            "",
            "a..b",
            long_label.as_str(),
            long_name.as_str(),
            "192.0.2.1",
            "bad\\.example.test",
        ] {
            let err = dns.inspect(&task("domain", value)).await.unwrap_err();
            assert!(matches!(err, PluginError::Skipped(_)), "{value}: {err:?}");
        }
        let err = dns
            .inspect(&task("ipaddr", "www.example.test"))
            .await
            .unwrap_err();
        assert!(matches!(err, PluginError::Skipped(ref why) if why.contains("not an IP address")));
        assert!(server.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_within_the_timeout() {
        // Bound and never read: queries are swallowed.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let timeout = Duration::from_millis(300);
        let dns = inspector(silent.local_addr().unwrap(), timeout).await;
        let started = std::time::Instant::now();
        let err = dns
            .inspect(&task("domain", "www.example.test"))
            .await
            .unwrap_err();
        assert_eq!(err, PluginError::TimedOut(timeout));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn fed_back_attributes_are_bounded_and_deduplicated() {
        let mut found = Found::default();
        for i in 0..40u8 {
            found.address(IpAddr::from([192, 0, 2, i]));
            found.address(IpAddr::from([192, 0, 2, i]));
        }
        found.name(&name("WWW.example.test."));
        found.name(&name("www.example.test."));
        assert_eq!(found.names, ["www.example.test"]);
        let attrs = found.attributes(&attribute("domain", "x.example.test"));
        assert_eq!(attrs.len(), MAX_NEW_ATTRIBUTES);
    }

    #[test]
    fn the_systems_servers_are_kept_without_its_domain_and_search_list() {
        let (system, _) = hickory_resolver::system_conf::parse_resolv_conf(
            "domain corp.example\nsearch corp.example lab.example\noptions ndots:5\nnameserver 10.0.0.2\n",
        )
        .unwrap();
        assert_eq!(system.search().len(), 2);
        let udp = system_servers(&system, &[Protocol::Udp, Protocol::Tcp]).unwrap();
        assert!(udp.search().is_empty());
        assert_eq!(udp.domain(), None);
        assert_eq!(udp.name_servers().len(), 2);
        let tcp = system_servers(&system, &[Protocol::Tcp]).unwrap();
        assert_eq!(tcp.name_servers().len(), 1);
        assert_eq!(tcp.name_servers()[0].protocol, Protocol::Tcp);
        assert!(system_servers(&ResolverConfig::new(), &[Protocol::Udp]).is_none());
    }

    #[test]
    fn nameservers_take_an_optional_port() {
        assert_eq!(
            parse_nameserver("127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_nameserver("10.0.0.2"),
            Some("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(
            parse_nameserver("[::1]:53"),
            Some("[::1]:53".parse().unwrap())
        );
        assert_eq!(parse_nameserver("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_nameserver("dns.example.test"), None);
    }

    #[tokio::test]
    async fn a_bad_nameserver_names_its_key() {
        let secrets = Secrets::local(".");
        let ctx = BuildContext {
            name: "dns",
            key: "inspector[3]",
            timeout: Duration::from_secs(1),
            secrets: &secrets,
            base_dir: Path::new("."),
        };
        let config: Config =
            toml::from_str("nameservers = [\"10.0.0.2\", \"resolver.local\"]").unwrap();
        let err = DnsInspector::build(&ctx, config).await.unwrap_err();
        assert!(
            err.to_string().contains("inspector[3].nameservers[1]"),
            "{err}"
        );
        let config: Config = toml::from_str("nameservers = []").unwrap();
        let err = DnsInspector::build(&ctx, config).await.unwrap_err();
        assert!(
            err.to_string().contains("inspector[3].nameservers"),
            "{err}"
        );
        assert!(toml::from_str::<Config>("protocol = \"quic\"").is_err());
        let config: Config =
            toml::from_str("nameservers = [\"127.0.0.1:5353\"]\nprotocol = \"tcp\"").unwrap();
        assert!(DnsInspector::build(&ctx, config).await.is_ok());
    }
}
