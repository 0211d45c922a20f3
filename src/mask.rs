//! Secrets never leave qbench: the one place that knows how a password is hidden.

/// What a password looks like wherever the config is shown.
pub const MASK: &str = "***";

/// The password of `scheme://user:password@host…`, if the URL carries one.
pub fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let (userinfo, _) = rest.rsplit_once('@')?;
    let (_, pw) = userinfo.split_once(':')?;
    (!pw.is_empty()).then_some(pw)
}

/// Replaces the password of a URL's userinfo with `***`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, hostpart)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, pw)) if !pw.is_empty() => format!("{scheme}://{user}:{MASK}@{hostpart}"),
        _ => url.to_string(),
    }
}

/// Every word that looks like a URL gets its password masked (a mistyped flag echoed back).
pub fn mask_urls_in(text: &str) -> String {
    text.split(' ')
        .map(mask_url_password)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces every known secret in `line` (the last defence before anything is printed).
pub fn scrub(line: &str, secrets: &[String]) -> String {
    let mut out = line.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s.as_str(), MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_lines_are_masked() {
        assert_eq!(
            mask_url_password("redis://default:pw@h:1/0"),
            "redis://default:***@h:1/0"
        );
        assert_eq!(mask_url_password("redis://h:1"), "redis://h:1");
        assert_eq!(url_password("postgres://u:p@h/db"), Some("p"));
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(
            mask_urls_in("bad --pg-url postgres://u:secret@h/db here"),
            "bad --pg-url postgres://u:***@h/db here"
        );
        assert_eq!(scrub("a hunter2 b", &["hunter2".into()]), "a *** b");
    }
}
