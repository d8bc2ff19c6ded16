//! Hints for a misspelled key: the nearest valid name, as `git` suggests a
//! command.

/// Edits (insert, delete, substitute) between two names, ignoring case.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The filter's "unknown field `X`, expected one of `a`, `b`" with "did you
/// mean `a`?" added when one valid name is close to `X`.
pub fn did_you_mean(message: &str) -> String {
    let Some((before, rest)) = message.split_once("unknown field `") else {
        return message.to_string();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let nearest = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|name| (distance(unknown, name), name))
        .min()
        .filter(|(d, _)| *d <= unknown.len().div_ceil(2).max(1));
    match nearest {
        Some((_, name)) => {
            let (expected, position) = match expected.rsplit_once(" at line ") {
                Some((e, p)) => (e, format!(" at line {p}")),
                None => (expected, String::new()),
            };
            let expected = expected.trim_start_matches(", ");
            format!("{before}unknown field `{unknown}`: did you mean `{name}`? ({expected}){position}")
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_name_is_suggested_and_a_far_one_is_not() {
        assert_eq!(distance("defualt", "default"), 2);
        assert_eq!(
            did_you_mean("routes[0].defualt: unknown field `defualt`, expected one of `name`, `default`, `rules` at line 1 column 24"),
            "routes[0].defualt: unknown field `defualt`: did you mean `default`? (expected one of `name`, `default`, `rules`) at line 1 column 24"
        );
        let far = "routes[0].zzz: unknown field `zzz`, expected one of `name`, `default`";
        assert_eq!(did_you_mean(far), far);
    }
}
