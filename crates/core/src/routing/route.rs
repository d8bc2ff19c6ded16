//! A compiled route and its rules: what `Router::decide` walks, and what
//! the route index and the header-name filter are built from. Below all
//! three, so the core reads bottom-up.

use crate::routing::matcher::Condition;
use crate::routing::mirror::Mirror;
use crate::routing::split::Split;
use crate::text::host_pattern::HostPattern;

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Empty: any host.
    pub hosts: Vec<HostPattern>,
    /// `pathPrefix`, or `path` when `path_exact`.
    pub path_prefix: Option<Vec<u8>>,
    /// `pathElements`: the prefix matches whole path elements, as
    /// Kubernetes' `pathType: Prefix` and Gateway API's `PathPrefix` do.
    pub path_elements: bool,
    /// `path`: the path must be exactly this, as Kubernetes' `pathType:
    /// Exact` matches.
    pub path_exact: bool,
    pub default: String,
    pub rules: Vec<Rule>,
    /// Traffic shadowing for this route, if configured.
    pub mirror: Option<Box<Mirror>>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's `name`, or `rules[i]` when it has none.
    pub label: String,
    /// All must hold; empty = always.
    pub conditions: Vec<Condition>,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Action {
    Target(String),
    Split(Box<Split>),
}

impl Rule {
    /// The rule's split, if its action is one.
    pub fn split(&self) -> Option<&Split> {
        match &self.action {
            Action::Split(split) => Some(split),
            Action::Target(_) => None,
        }
    }
}

impl Route {
    /// Every target the route can send traffic to, its default first, each
    /// once: what its counters and a dashboard list.
    pub fn targets(&self) -> Vec<&str> {
        let mut targets = vec![self.default.as_str()];
        for rule in &self.rules {
            let more: Vec<&str> = match &rule.action {
                Action::Target(t) => vec![t.as_str()],
                Action::Split(split) => split.targets().iter().map(String::as_str).collect(),
            };
            for t in more {
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
        }
        targets
    }

    /// Whether the route's `pathPrefix` or `path` (if any) matches this
    /// path (the part before `?`).
    pub fn path_matches(&self, path: &[u8]) -> bool {
        self.path_prefix.as_ref().is_none_or(|prefix| {
            if self.path_exact {
                return path == prefix.as_slice();
            }
            path.starts_with(prefix)
                && (!self.path_elements
                    || prefix.ends_with(b"/")
                    || matches!(path.get(prefix.len()), None | Some(b'/')))
        })
    }
}
