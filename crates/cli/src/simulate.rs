//! `canary-router simulate`: many synthetic requests through the decision
//! code, and the share each target gets.

use std::collections::BTreeMap;
use std::path::Path;

use canary_router_core::hashing::rng::Rng;
use canary_router_core::request::{Request, Source};
use canary_router_core::routing::route::Route;
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::Moment;
use canary_router_core::text::host_pattern::HostPattern;

use crate::input;
use crate::{Failure, When};

const BAR_WIDTH: usize = 40;

pub fn run(
    path: &Path,
    requests: u32,
    sticky_ids: Option<u32>,
    compare: Option<&Path>,
    when: &When,
) -> Result<(), Failure> {
    if requests == 0 {
        return Err(Failure::Usage("--requests must be at least 1".into()));
    }
    let (origin, router) = input::router(path)?;
    let other = compare.map(input::router).transpose()?;
    let now_ms = when.now_ms()?;
    let live = when.live(router.split_count.max(other.as_ref().map_or(0, |(_, o)| o.split_count)));
    let at = |roll| Moment { roll, now_ms, splits: &live };
    println!("{origin}: {requests} synthetic requests per route (no headers, cookies or query)");
    let mut rng = Rng::new(0x5eed);
    for route in &router.routes {
        let host = example_host(route);
        let path =
            route.path_prefix.as_ref().map_or("/".to_string(), |p| String::from_utf8_lossy(p).into_owned());
        println!("\nroute {} (host {host}, path {path})", route.name);
        let mut counts = BTreeMap::new();
        for _ in 0..requests {
            let target = decide(&router, &host, &path, None, &at(rng.roll()));
            *counts.entry(target).or_insert(0u32) += 1;
        }
        print!("{}", chart(&counts, requests));

        let (Some(ids), Some(source)) = (sticky_ids, sticky_source(route)) else { continue };
        println!("  {ids} sticky ids ({source}):");
        let mut counts = BTreeMap::new();
        let mut moves: BTreeMap<(String, String), u32> = BTreeMap::new();
        for id in 0..ids {
            let id = format!("id-{id}");
            let target = decide(&router, &host, &path, Some((&source, &id)), &at(0));
            if let Some((_, other)) = &other {
                let then = decide(other, &host, &path, Some((&source, &id)), &at(0));
                if then != target {
                    *moves.entry((target.clone(), then)).or_insert(0) += 1;
                }
            }
            *counts.entry(target).or_insert(0u32) += 1;
        }
        print!("{}", chart(&counts, ids));
        if let Some((other_origin, _)) = &other {
            let moved: u32 = moves.values().sum();
            println!(
                "  compared with {other_origin}: {moved} of {ids} ids change target ({:.1}%)",
                f64::from(moved) * 100.0 / f64::from(ids)
            );
            for ((from, to), n) in &moves {
                println!("    {from} -> {to}: {n}");
            }
        }
    }
    Ok(())
}

/// A host the route accepts, for synthetic requests.
fn example_host(route: &Route) -> String {
    match route.hosts.first() {
        Some(HostPattern::Exact(host)) => String::from_utf8_lossy(host).into_owned(),
        Some(HostPattern::Suffix(suffix)) => format!("www{}", String::from_utf8_lossy(suffix)),
        Some(HostPattern::Any) | None => "simulated.example".to_string(),
    }
}

/// The sticky key source of the route's first sticky split, if any.
fn sticky_source(route: &Route) -> Option<Source> {
    route.rules.iter().find_map(|rule| rule.split()?.sticky_by().cloned())
}

/// The target for a synthetic request, optionally carrying a sticky id.
fn decide(
    router: &Router,
    host: &str,
    path: &str,
    sticky: Option<(&Source, &str)>,
    moment: &Moment<'_>,
) -> String {
    let mut path = path.to_string();
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = vec![(b":authority".to_vec(), host.as_bytes().to_vec())];
    match sticky {
        Some((Source::Header(name), id)) => pairs.push((name.clone(), id.as_bytes().to_vec())),
        Some((Source::Cookie(name), id)) => {
            pairs.push((b"cookie".to_vec(), [name.as_slice(), b"=", id.as_bytes()].concat()));
        }
        Some((Source::Query(name), id)) => path = format!("{path}?{}={id}", String::from_utf8_lossy(name)),
        None => {}
    }
    pairs.push((b":path".to_vec(), path.into_bytes()));
    let request = Request::new(pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect());
    router.decide(&request, moment).map_or_else(|| "(no route)".to_string(), |d| d.target.to_string())
}

/// Counts as a bar chart with percentages.
fn chart(counts: &BTreeMap<String, u32>, total: u32) -> String {
    let width = counts.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (target, &n) in counts {
        let share = f64::from(n) / f64::from(total);
        let filled = (share * BAR_WIDTH as f64).round() as usize;
        out += &format!(
            "  {target:<width$}  {}{}  {:5.1}%  ({n})\n",
            "#".repeat(filled),
            ".".repeat(BAR_WIDTH - filled),
            share * 100.0
        );
    }
    out
}
