//! The ListObjectsV2 answer, read without I/O: keys, whether the listing is truncated, and
//! the continuation token. Namespace-agnostic, because S3 answers in
//! `http://s3.amazonaws.com/doc/2006-03-01/` and Google Cloud Storage's XML API in
//! `http://doc.s3.amazonaws.com/2006-03-01`, and some servers use a prefix or none.

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The object keys, in the server's order.
    pub keys: Vec<String>,
    /// `IsTruncated`.
    pub truncated: bool,
    /// `NextContinuationToken`, when there is a next page.
    pub next_token: Option<String>,
}

/// Why a listing could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unreadable listing: {0}")]
pub struct ListingError(pub String);

/// Listings larger than this are refused (S3 pages hold at most 1000 keys, a few hundred
/// KB).
pub const MAX_LISTING_BYTES: usize = 8 << 20;

/// Parses one ListObjectsV2 page. Linear in the input.
pub fn parse_list_page(xml: &str) -> Result<ListPage, ListingError> {
    if xml.len() > MAX_LISTING_BYTES {
        return Err(ListingError(format!(
            "{} bytes, more than {MAX_LISTING_BYTES}",
            xml.len()
        )));
    }
    let mut page = ListPage::default();
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut root_seen = false;
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if rest.starts_with("<?") {
            let end = rest
                .find("?>")
                .ok_or_else(|| bad("unterminated declaration"))?;
            rest = &rest[end + 2..];
            continue;
        }
        if rest.starts_with("<!--") {
            let end = rest
                .find("-->")
                .ok_or_else(|| bad("unterminated comment"))?;
            rest = &rest[end + 3..];
            continue;
        }
        if rest.starts_with("<![CDATA[") {
            let end = rest.find("]]>").ok_or_else(|| bad("unterminated CDATA"))?;
            text.push_str(&rest[9..end]);
            rest = &rest[end + 3..];
            continue;
        }
        let gt = rest.find('>').ok_or_else(|| bad("unterminated tag"))?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = local_name(name.trim());
            let open = stack
                .pop()
                .ok_or_else(|| bad("closing tag without an opening one"))?;
            if open != name {
                return Err(bad(&format!("<{open}> closed by </{name}>")));
            }
            let value = decode_entities(&text)?;
            let path: Vec<&str> = stack.iter().map(String::as_str).collect();
            match (path.as_slice(), name) {
                (["ListBucketResult", "Contents"], "Key") => page.keys.push(value),
                (["ListBucketResult"], "IsTruncated") => page.truncated = value.trim() == "true",
                (["ListBucketResult"], "NextContinuationToken") => {
                    page.next_token = Some(value).filter(|t| !t.is_empty());
                }
                _ => {}
            }
            text.clear();
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = local_name(tag.split_whitespace().next().unwrap_or(""));
        if name.is_empty() {
            return Err(bad("empty tag"));
        }
        if stack.is_empty() {
            if root_seen || name != "ListBucketResult" {
                return Err(bad(&format!(
                    "root element <{name}>, not <ListBucketResult>"
                )));
            }
            root_seen = true;
        }
        text.clear();
        if !self_closing {
            if stack.len() >= 16 {
                return Err(bad("nested too deeply"));
            }
            stack.push(name.to_string());
        }
    }
    if !root_seen || !stack.is_empty() {
        return Err(bad("no complete <ListBucketResult>"));
    }
    if !page.truncated {
        page.next_token = None;
    }
    Ok(page)
}

fn bad(why: &str) -> ListingError {
    ListingError(why.to_string())
}

/// `s3:Key` -> `Key`.
fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn decode_entities(text: &str) -> Result<String, ListingError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp + 1..];
        let semi = rest
            .find(';')
            .filter(|&i| i <= 10)
            .ok_or_else(|| bad("bad entity"))?;
        let entity = &rest[..semi];
        rest = &rest[semi + 1..];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = entity.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = entity.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| bad(&format!("unknown entity &{entity};")))?
            }
        };
        out.push(c);
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/a&amp;b</Key><Size>3</Size><ETag>&quot;x&quot;</ETag></Contents>
<Contents><Key>p/c</Key><Owner><ID>o</ID></Owner></Contents>
<NextContinuationToken>tok/1=</NextContinuationToken></ListBucketResult>"#;

    #[test]
    fn s3_and_gcs_namespaces() {
        let page = parse_list_page(S3).unwrap();
        assert_eq!(page.keys, ["p/a&b", "p/c"]);
        assert!(page.truncated);
        assert_eq!(page.next_token.as_deref(), Some("tok/1="));
        let gcs = S3.replace(
            "http://s3.amazonaws.com/doc/2006-03-01/",
            "http://doc.s3.amazonaws.com/2006-03-01",
        );
        assert_eq!(parse_list_page(&gcs).unwrap(), page);
        let prefixed = S3
            .replace("<ListBucketResult xmlns=", "<s3:ListBucketResult xmlns:s3=")
            .replace("</ListBucketResult>", "</s3:ListBucketResult>");
        assert_eq!(parse_list_page(&prefixed).unwrap(), page);
    }

    #[test]
    fn last_page_and_bad_input() {
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated><NextContinuationToken>t</NextContinuationToken><Contents/></ListBucketResult>";
        let page = parse_list_page(last).unwrap();
        assert!(page.keys.is_empty() && page.next_token.is_none());
        for bad in [
            "",
            "<Error><Code>x</Code></Error>",
            "<ListBucketResult><Contents><Key>a</Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&bogus;</Key></Contents></ListBucketResult>",
            "<ListBucketResult>",
        ] {
            assert!(parse_list_page(bad).is_err(), "{bad}");
        }
        // Keys outside Contents (a CommonPrefixes entry) are not objects.
        let page = parse_list_page(
            "<ListBucketResult><CommonPrefixes><Prefix>x/</Prefix></CommonPrefixes></ListBucketResult>",
        )
        .unwrap();
        assert!(page.keys.is_empty());
    }
}
