//! Field paths in index, constraint and field definitions: `name`, `.name`, `.a.b`,
//! `.a[0]`, `.a['b c']`, `.a["b"]` (the leading `.` is optional).

use testudo_model::{Data, DataMap};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// Parses a field path; `None` if it is malformed.
pub fn parse(text: &str) -> Option<Vec<Segment>> {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    if chars.first() == Some(&'.') {
        i = 1;
    }
    let ident = |i: &mut usize| -> Option<String> {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        (*i > start).then(|| chars[start..*i].iter().collect())
    };
    out.push(Segment::Field(ident(&mut i)?));
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                out.push(Segment::Field(ident(&mut i)?));
            }
            '[' => {
                i += 1;
                match chars.get(i)? {
                    q @ ('\'' | '"') => {
                        let quote = *q;
                        i += 1;
                        let start = i;
                        while i < chars.len() && chars[i] != quote {
                            i += 1;
                        }
                        let name: String = chars.get(start..i)?.iter().collect();
                        i += 1;
                        out.push(Segment::Field(name));
                    }
                    _ => {
                        let start = i;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                        let digits: String = chars.get(start..i)?.iter().collect();
                        out.push(Segment::Index(digits.parse().ok()?));
                    }
                }
                if chars.get(i) != Some(&']') {
                    return None;
                }
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The value at `path` in a document's fields (`Data::Null` when absent).
pub fn get<'a>(fields: &'a DataMap, path: &[Segment]) -> Option<&'a Data> {
    let (first, rest) = path.split_first()?;
    let Segment::Field(name) = first else {
        return None;
    };
    let mut cur = fields.get(name)?;
    for seg in rest {
        cur = match (seg, cur) {
            (Segment::Field(f), Data::Object(o)) => o.get(f)?,
            (Segment::Index(i), Data::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_in_every_written_form() {
        let f = |s: &str| Segment::Field(s.to_string());
        assert_eq!(parse("name"), Some(vec![f("name")]));
        assert_eq!(parse(".name"), Some(vec![f("name")]));
        assert_eq!(parse(".a.b"), Some(vec![f("a"), f("b")]));
        assert_eq!(parse(".a[0]"), Some(vec![f("a"), Segment::Index(0)]));
        assert_eq!(parse(".a['b c']"), Some(vec![f("a"), f("b c")]));
        assert_eq!(parse(".a[\"b\"]"), Some(vec![f("a"), f("b")]));
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", ".", "a.", "a[", "a[x]", "a]", "a b", ".a['b"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
