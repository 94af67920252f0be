//! The entity graph of a report, laid out on the server and drawn as inline SVG by
//! `templates/graph.html` (askama escapes every label, as in the rest of the page).
//!
//! Columns from left to right: the alerts; the attributes they name; then each round
//! of discovery: an attribute an inspector found while inspecting another is drawn one
//! column right of it, the edge labelled with the inspector's name. Who found what is
//! the claim's claimer ([`AttributeOrigin`]); the report JSON alone does not say.
//! Each attribute node is coloured by what its inspections found: malware named
//! (`g-bad`), something found (`g-found`), nothing found (`g-nothing`), not known
//! (failed, timed out, rate limited, skipped: `g-unknown`), not inspected (`g-none`).
//! The graph is bounded: past [`MAX_ATTRIBUTE_NODES`] attributes or
//! [`MAX_ALERT_NODES`] alerts the rest is counted, not drawn.

use std::collections::{HashMap, HashSet};

use alertresponder_core::model::{Attribute, InspectionStatus, Report};
use alertresponder_core::ports::{AttributeOrigin, FoundBy};
use serde_json::Value;

use super::view::cut;

/// Most alerts drawn, one node each; the others share one node.
pub const MAX_ALERT_NODES: usize = 6;
/// Most attribute nodes drawn.
pub const MAX_ATTRIBUTE_NODES: usize = 60;
/// Most edges drawn.
pub const MAX_EDGES: usize = 300;
/// Deepest column of discovery drawn (deeper ones are drawn in it).
const MAX_COLUMN: usize = 8;

const NODE_W: u32 = 210;
const NODE_H: u32 = 34;
const COL_GAP: u32 = 90;
const ROW_GAP: u32 = 14;
const PAD: u32 = 12;
/// Characters of a value on its node (the whole, bounded, is its tooltip).
const LABEL_CHARS: usize = 26;

/// One box of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
    /// The short label drawn.
    pub label: String,
    /// The tooltip: the whole value, bounded.
    pub title: String,
    /// CSS class: `g-alert`, `g-bad`, `g-found`, `g-nothing`, `g-unknown`, `g-none`.
    pub class: &'static str,
    /// `alert` or `attribute`.
    pub kind: &'static str,
    /// Anchor of the attribute's findings on the page (`a-<hash>`), none for an alert.
    pub anchor: Option<String>,
}

/// One arrow of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Start (right edge of the source).
    pub x1: u32,
    /// Start.
    pub y1: u32,
    /// End (left edge of the target).
    pub x2: u32,
    /// End.
    pub y2: u32,
    /// The inspector that found the target (empty from an alert).
    pub label: String,
    /// Where the label is drawn.
    pub lx: u32,
    /// Where the label is drawn.
    pub ly: u32,
}

/// The laid-out graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// Width of the drawing.
    pub width: u32,
    /// Height of the drawing.
    pub height: u32,
    /// The boxes.
    pub nodes: Vec<Node>,
    /// The arrows.
    pub edges: Vec<Edge>,
    /// Attributes not drawn (past the bound).
    pub omitted: usize,
}

/// `s` made printable and cut to `n` characters with a bare `…`: a label fits its box
/// (the tooltip has the rest).
fn clip(s: &str, n: usize) -> String {
    let printable = cut(s, 300);
    let mut label: String = printable.chars().take(n).collect();
    if printable.chars().count() > n {
        label.push('…');
    }
    label
}

/// A short label: type and value, cut to [`LABEL_CHARS`] with `…`.
fn short(attr: &Attribute) -> String {
    format!(
        "{}: {}",
        clip(&attr.attr_type, 12),
        clip(&attr.value, LABEL_CHARS)
    )
}

/// Whether a section's content names malware (a non-empty `related_malware`).
fn names_malware(content: &Value) -> bool {
    content
        .get("related_malware")
        .and_then(Value::as_array)
        .is_some_and(|m| !m.is_empty())
}

/// The colour class of an attribute, from its sections and inspection outcomes.
fn class_of(report: &Report, hash: &str) -> &'static str {
    let sections: Vec<_> = report
        .sections
        .iter()
        .filter(|s| s.attribute.hash() == hash)
        .collect();
    if sections.iter().any(|s| names_malware(&s.content)) {
        return "g-bad";
    }
    if !sections.is_empty() {
        return "g-found";
    }
    let outcomes: Vec<InspectionStatus> = report
        .inspections
        .iter()
        .filter(|i| i.attribute.hash() == hash)
        .map(|i| i.status)
        .collect();
    if outcomes.is_empty() {
        "g-none"
    } else if outcomes
        .iter()
        .all(|s| *s == InspectionStatus::NothingFound)
    {
        "g-nothing"
    } else if outcomes.contains(&InspectionStatus::Ok) {
        "g-found"
    } else {
        "g-unknown"
    }
}

/// Lays the graph of `report` out, with who found each claimed attribute.
pub fn layout(report: &Report, origins: &[AttributeOrigin]) -> Graph {
    // Every attribute, alerts' first (in order), then claimed ones.
    let mut attrs: Vec<(String, &Attribute)> = Vec::new();
    let mut seen = HashSet::new();
    let mut named = HashSet::new();
    for attr in report.alerts.iter().flat_map(|a| &a.attributes) {
        let hash = attr.hash();
        named.insert(hash.clone());
        if seen.insert(hash.clone()) {
            attrs.push((hash, attr));
        }
    }
    for attr in &report.attributes {
        let hash = attr.hash();
        if seen.insert(hash.clone()) {
            attrs.push((hash, attr));
        }
    }
    let found_by: HashMap<&str, (&str, &str)> = origins
        .iter()
        .filter_map(|o| match &o.found_by {
            FoundBy::Inspector { parent, inspector } => {
                Some((o.hash.as_str(), (parent.as_str(), inspector.as_str())))
            }
            _ => None,
        })
        .collect();
    let omitted = attrs.len().saturating_sub(MAX_ATTRIBUTE_NODES);
    attrs.truncate(MAX_ATTRIBUTE_NODES);
    // Column of each attribute: 1 for an alert's, one more than its finder's.
    let mut column: HashMap<&str, usize> = HashMap::new();
    for (hash, _) in &attrs {
        let mut depth = 1;
        let mut at = hash.as_str();
        let mut hops = 0;
        while !named.contains(at) && hops < MAX_COLUMN {
            match found_by.get(at) {
                Some((parent, _)) => {
                    depth += 1;
                    at = parent;
                    hops += 1;
                }
                None => {
                    depth += 1;
                    break;
                }
            }
        }
        column.insert(hash.as_str(), depth.min(MAX_COLUMN));
    }

    let mut graph = Graph {
        omitted,
        ..Default::default()
    };
    let mut rows = [0u32; MAX_COLUMN + 1];
    let mut place = |col: usize, graph: &mut Graph| -> (u32, u32) {
        let row = rows[col];
        rows[col] += 1;
        let x = PAD + col as u32 * (NODE_W + COL_GAP);
        let y = PAD + row * (NODE_H + ROW_GAP);
        graph.width = graph.width.max(x + NODE_W + PAD);
        graph.height = graph.height.max(y + NODE_H + PAD);
        (x, y)
    };
    // Alerts: one node each up to the bound, the rest on one node.
    let shown = report.alerts.len().min(MAX_ALERT_NODES);
    let mut alert_nodes: Vec<(u32, u32)> = Vec::new();
    for (i, alert) in report.alerts.iter().take(shown).enumerate() {
        let (x, y) = place(0, &mut graph);
        alert_nodes.push((x, y));
        graph.nodes.push(Node {
            x,
            y,
            w: NODE_W,
            h: NODE_H,
            label: format!("alert {}: {}", i + 1, clip(&alert.alert_key, 18)),
            title: cut(&alert.title(), 300),
            class: "g-alert",
            kind: "alert",
            anchor: None,
        });
    }
    let rest = report.alerts.len() - shown;
    if rest > 0 {
        let (x, y) = place(0, &mut graph);
        alert_nodes.push((x, y));
        graph.nodes.push(Node {
            x,
            y,
            w: NODE_W,
            h: NODE_H,
            label: format!("+{rest} more alerts"),
            title: format!("{rest} more alerts, not drawn one by one"),
            class: "g-alert",
            kind: "alert",
            anchor: None,
        });
    }
    let mut at: HashMap<&str, (u32, u32)> = HashMap::new();
    let mut by_column: Vec<&(String, &Attribute)> = attrs.iter().collect();
    by_column.sort_by_key(|(h, _)| column.get(h.as_str()).copied().unwrap_or(1));
    for (hash, attr) in by_column {
        let col = column.get(hash.as_str()).copied().unwrap_or(1);
        let (x, y) = place(col, &mut graph);
        at.insert(hash.as_str(), (x, y));
        graph.nodes.push(Node {
            x,
            y,
            w: NODE_W,
            h: NODE_H,
            label: short(attr),
            title: format!("{} {}", cut(&attr.attr_type, 40), cut(&attr.value, 300)),
            class: class_of(report, hash),
            kind: "attribute",
            anchor: Some(format!("a-{hash}")),
        });
    }
    let mid = NODE_H / 2;
    let arrow = |from: (u32, u32), to: (u32, u32), label: String| Edge {
        x1: from.0 + NODE_W,
        y1: from.1 + mid,
        x2: to.0,
        y2: to.1 + mid,
        lx: (from.0 + NODE_W + to.0) / 2,
        ly: (from.1 + to.1) / 2 + mid - 4,
        label,
    };
    // Alert → each attribute it names (the hidden alerts' through the shared node).
    for (i, alert) in report.alerts.iter().enumerate() {
        let from = alert_nodes[i.min(alert_nodes.len().saturating_sub(1))];
        let mut drawn = HashSet::new();
        for attr in &alert.attributes {
            let hash = attr.hash();
            if let Some(&to) = at.get(hash.as_str()) {
                if drawn.insert(hash) && graph.edges.len() < MAX_EDGES {
                    let edge = arrow(from, to, String::new());
                    if !graph.edges.contains(&edge) {
                        graph.edges.push(edge);
                    }
                }
            }
        }
    }
    // Attribute → what an inspector discovered on it.
    for (hash, (parent, inspector)) in &found_by {
        if let (Some(&from), Some(&to)) = (at.get(parent), at.get(hash)) {
            if graph.edges.len() < MAX_EDGES {
                graph.edges.push(arrow(from, to, clip(inspector, 22)));
            }
        }
    }
    graph.edges.sort_by_key(|e| (e.x1, e.y1, e.y2));
    graph
}

#[cfg(test)]
mod tests {
    use alertresponder_core::fixtures::{alert, attr, report, section};
    use alertresponder_core::model::Severity;
    use serde_json::json;

    use super::*;

    #[test]
    fn discovered_attributes_sit_right_of_their_finder_with_its_name() {
        let mut r = report("r1", 1, Severity::Urgent);
        r.alerts = vec![alert("rule", &["10.0.0.1"])];
        let ip = attr("10.0.0.1");
        let found = Attribute {
            attr_type: "domain".into(),
            key: "resolved".into(),
            value: "evil.example".into(),
            context: vec![],
            timestamp: None,
        };
        r.attributes = vec![ip.clone(), found.clone()];
        let mut s = section("r1", "evil.example", "intel", "NL");
        s.attribute = found.clone();
        s.content = json!({"related_malware": [{"sha256": "x"}]});
        r.sections = vec![s];
        let origins = vec![
            AttributeOrigin {
                hash: ip.hash(),
                found_by: FoundBy::Alert {
                    message_id: "m".into(),
                },
            },
            AttributeOrigin {
                hash: found.hash(),
                found_by: FoundBy::Inspector {
                    parent: ip.hash(),
                    inspector: "intel".into(),
                },
            },
        ];
        let g = layout(&r, &origins);
        assert_eq!(g.nodes.len(), 3);
        let (a, i, d) = (&g.nodes[0], &g.nodes[1], &g.nodes[2]);
        assert_eq!(
            (a.kind, i.kind, d.kind),
            ("alert", "attribute", "attribute")
        );
        assert!(a.x < i.x && i.x < d.x, "{g:?}");
        assert_eq!(d.class, "g-bad");
        assert_eq!(i.class, "g-none");
        assert_eq!(g.edges.len(), 2);
        assert_eq!(g.edges[1].label, "intel");
        assert!(g.width >= d.x + d.w && g.height >= d.y + d.h);
    }

    #[test]
    fn a_large_report_is_drawn_bounded() {
        let mut r = report("r1", 1, Severity::Safe);
        let ips: Vec<String> = (0..200)
            .map(|n| format!("10.0.{}.{}", n / 250, n % 250))
            .collect();
        let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        r.alerts = (0..50).map(|_| alert("rule", &refs)).collect();
        let g = layout(&r, &[]);
        assert_eq!(g.nodes.len(), MAX_ALERT_NODES + 1 + MAX_ATTRIBUTE_NODES);
        assert_eq!(g.omitted, 140);
        assert!(g.edges.len() <= MAX_EDGES);
    }
}
