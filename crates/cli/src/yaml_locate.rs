//! Where a config path (`routes[0].rules[1].split`) sits in a YAML file, so
//! an error in a WasmPlugin's `pluginConfig` names the line the user edits,
//! not a line of the JSON the CLI made from it. serde's YAML values carry
//! no positions; this walks the text's indentation instead, which is exact
//! for block style and names the line for flow style (`{ a: 1 }`).

/// One step of a path: a key or a list index.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// `routes[0].rules[1].split.weights` as steps; `None` when the text is not
/// a path (an error without one).
pub fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return None;
        }
        steps.push(Step::Key(key.to_string()));
        while !rest.is_empty() {
            let (index, after) = rest.split_once(']')?;
            steps.push(Step::Index(index.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    Some(steps)
}

/// A line of the document: its number in the file (from 1), its raw
/// indentation, and its indentation once leading `- ` are read as spaces.
struct Line<'t> {
    number: usize,
    text: &'t str,
    indent: usize,
    key_indent: usize,
}

fn lines(text: &str, first_line: usize) -> Vec<Line<'_>> {
    text.lines()
        .enumerate()
        .filter(|(_, t)| {
            let trimmed = t.trim_start();
            !trimmed.is_empty() && !trimmed.starts_with('#')
        })
        .map(|(i, text)| {
            let indent = text.len() - text.trim_start_matches(' ').len();
            let mut key_indent = indent;
            while let Some(rest) = text.get(key_indent..).and_then(|r| r.strip_prefix('-')) {
                if !(rest.is_empty() || rest.starts_with(' ')) {
                    break;
                }
                key_indent = text.len() - rest.trim_start_matches(' ').len();
            }
            Line { number: first_line + i, text, indent, key_indent }
        })
        .collect()
}

/// The column (from 0) where `key:` starts in `text` at or after `from`.
fn key_at(text: &str, from: usize, key: &str) -> Option<usize> {
    let rest = text.get(from..)?;
    [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")].iter().find_map(|pattern| {
        rest.match_indices(pattern.as_str())
            .find(|(at, _)| {
                let before = rest[..*at].chars().last();
                before.is_none_or(|c| c == ' ' || c == '{' || c == ',' || c == '-')
            })
            .map(|(at, _)| from + at)
    })
}

/// The line and column (both from 1) of `steps` in a YAML document whose
/// text starts at line `first_line` of its file; the deepest step found
/// when the path goes on inside a flow collection or a scalar.
pub fn locate(document: &str, first_line: usize, steps: &[Step]) -> Option<(usize, usize)> {
    let lines = lines(document, first_line);
    // The region the next step looks in: lines[lo..hi], whose entries sit
    // at `indent` or deeper.
    let (mut lo, mut hi) = (0, lines.len());
    // Once a step lands inside one line (flow style), the rest is searched
    // from this column of that line.
    let mut inline: Option<usize> = None;
    let mut found: Option<(usize, usize)> = None;
    for step in steps {
        if lo >= hi {
            break;
        }
        if let Some(column) = inline {
            let line = &lines[lo];
            match step {
                Step::Key(key) => match key_at(line.text, column, key) {
                    Some(at) => {
                        inline = Some(at + key.len() + 1);
                        found = Some((line.number, at + 1));
                    }
                    None => break,
                },
                Step::Index(_) => {}
            }
            continue;
        }
        match step {
            Step::Key(key) => {
                let level = lines[lo].key_indent;
                let Some(at) = (lo..hi).find(|&i| {
                    lines[i].key_indent == level && key_at(lines[i].text, level, key) == Some(level)
                }) else {
                    break;
                };
                found = Some((lines[at].number, level + 1));
                let text = lines[at].text;
                let after_colon = text[level..].find(':').map_or(text.len(), |c| level + c + 1);
                let value = text[after_colon..].trim();
                let block_scalar = value.starts_with('|') || value.starts_with('>');
                if !value.is_empty() && !block_scalar && !value.starts_with('#') {
                    // An inline value: the path goes on inside this line.
                    inline = Some(after_colon);
                    (lo, hi) = (at, at + 1);
                } else {
                    let end = (at + 1..hi).find(|&i| lines[i].key_indent <= level).unwrap_or(hi);
                    (lo, hi) = (at + 1, end);
                }
            }
            Step::Index(n) => {
                let item_indent = lines[lo].indent;
                let items: Vec<usize> = (lo..hi)
                    .filter(|&i| {
                        lines[i].indent == item_indent && lines[i].text[item_indent..].starts_with('-')
                    })
                    .collect();
                let Some(&at) = items.get(*n) else {
                    break;
                };
                found = Some((lines[at].number, lines[at].key_indent + 1));
                let end = (at + 1..hi).find(|&i| lines[i].indent <= item_indent).unwrap_or(hi);
                let first = &lines[at];
                let value = first.text[first.key_indent..].trim();
                if value.starts_with('{') || value.starts_with('[') || (end == at + 1 && !value.contains(':'))
                {
                    inline = Some(first.key_indent);
                    (lo, hi) = (at, at + 1);
                } else {
                    (lo, hi) = (at, end);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGIN: &str = "\
kind: WasmPlugin
spec:
  pluginConfig:
    targetHeader: x-b
    routes:
    - name: service-b
      hosts: [\"b.example.com\"]
      default: stable
      rules:
      - match: [{ cookie: foo, exact: bar }]
        target: canary
      - split:
          weights:
          - { target: fixed, weight: -5 }
          - target: stable
            weight: 95
";

    fn at(path: &str) -> Option<(usize, usize)> {
        let mut steps = vec![Step::Key("spec".into()), Step::Key("pluginConfig".into())];
        steps.extend(parse_path(path).unwrap());
        locate(PLUGIN, 1, &steps)
    }

    #[test]
    fn paths_parse_into_keys_and_indices() {
        assert_eq!(
            parse_path("routes[0].rules[12].split").unwrap(),
            vec![
                Step::Key("routes".into()),
                Step::Index(0),
                Step::Key("rules".into()),
                Step::Index(12),
                Step::Key("split".into())
            ]
        );
        assert_eq!(parse_path("config must be an object"), None);
    }

    #[test]
    fn block_and_flow_style_paths_land_on_the_users_line() {
        assert_eq!(at("targetHeader"), Some((4, 5)));
        assert_eq!(at("routes[0].default"), Some((8, 7)));
        assert_eq!(at("routes[0].rules[0].target"), Some((11, 9)));
        assert_eq!(at("routes[0].rules[0].match[0].cookie"), Some((10, 19)));
        assert_eq!(at("routes[0].rules[1].split.weights[0].weight"), Some((14, 30)));
        assert_eq!(at("routes[0].rules[1].split.weights[1].weight"), Some((16, 13)));
        assert_eq!(at("routes[0].hosts[0]"), Some((7, 7)));
    }

    #[test]
    fn a_path_that_is_not_there_stops_at_the_deepest_step_found() {
        assert_eq!(at("routes[0].mirror.cluster"), Some((6, 7)));
        assert_eq!(at("routes[3]"), Some((5, 5)));
    }

    #[test]
    fn a_document_later_in_the_file_keeps_its_line_numbers() {
        assert_eq!(locate("a: 1\nb:\n  c: 2\n", 10, &parse_path("b.c").unwrap()), Some((12, 3)));
    }
}
