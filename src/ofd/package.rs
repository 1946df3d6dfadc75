//! Reading an OFD package from untrusted bytes: a ZIP whose entries are bounded in number and
//! size (declared and actual), whose names are plain relative paths (no `..`, no absolute or
//! backslash names, no duplicates), and whose XML is parsed without a DTD (so no entity
//! expansion) and with a bounded number of nodes.

use std::collections::BTreeMap;
use std::io::Read;

/// Most entries in a package (a certificate has about ten).
pub const MAX_ENTRIES: usize = 2_000;
/// Most bytes of one entry once inflated.
pub const MAX_ENTRY: u64 = 16 * 1024 * 1024;
/// Most bytes of all entries once inflated.
pub const MAX_TOTAL: u64 = 64 * 1024 * 1024;
/// Most XML nodes in one file.
pub const MAX_NODES: u32 = 200_000;

#[derive(Debug, Clone, thiserror::Error)]
#[error("not a readable OFD package: {0}")]
pub struct PackageError(pub String);

pub struct Package {
    files: BTreeMap<String, Vec<u8>>,
}

fn bad(m: impl Into<String>) -> PackageError {
    PackageError(m.into())
}

/// Whether the bytes look like a ZIP (and so an OFD candidate).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

impl Package {
    pub fn open(bytes: &[u8]) -> Result<Package, PackageError> {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| bad(format!("ZIP 无法读取：{e}")))?;
        if z.len() > MAX_ENTRIES {
            return Err(bad(format!("文件条目过多（{}）", z.len())));
        }
        let mut files = BTreeMap::new();
        let mut total: u64 = 0;
        for i in 0..z.len() {
            let mut f = z
                .by_index(i)
                .map_err(|e| bad(format!("ZIP 条目无法读取：{e}")))?;
            let name = f
                .name()
                .map_err(|e| bad(format!("ZIP 条目名无法读取：{e}")))?
                .into_owned();
            if f.is_dir() {
                continue;
            }
            if name.is_empty()
                || name.starts_with('/')
                || name.contains('\\')
                || name.contains('\0')
                || name
                    .split('/')
                    .any(|p| p == ".." || p == "." || p.is_empty())
            {
                return Err(bad(format!("不安全的文件名：{name}")));
            }
            if f.size() > MAX_ENTRY {
                return Err(bad(format!("文件 {name} 过大")));
            }
            let mut data = Vec::with_capacity(f.size().min(MAX_ENTRY) as usize);
            // The declared size is not trusted: read at most one byte more than allowed.
            (&mut f)
                .take(MAX_ENTRY + 1)
                .read_to_end(&mut data)
                .map_err(|e| bad(format!("文件 {name} 无法解压：{e}")))?;
            if data.len() as u64 > MAX_ENTRY {
                return Err(bad(format!("文件 {name} 解压后过大")));
            }
            total += data.len() as u64;
            if total > MAX_TOTAL {
                return Err(bad("解压后总大小超过限制"));
            }
            if files.insert(name.clone(), data).is_some() {
                return Err(bad(format!("重复的文件名：{name}")));
            }
        }
        Ok(Package { files })
    }

    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files
            .get(path.trim_start_matches('/'))
            .map(Vec::as_slice)
    }

    pub fn text(&self, path: &str) -> Option<&str> {
        self.file(path).and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.files.keys()
    }

    /// Every file (for tests and tools that rewrite a package).
    pub fn into_files(self) -> BTreeMap<String, Vec<u8>> {
        self.files
    }
}

/// Most element nesting in one file (OFD files nest a few levels).
pub const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, thiserror::Error)]
pub enum XmlError {
    #[error("{0}")]
    Parse(#[from] roxmltree::Error),
    #[error("elements nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Parses XML from a package: no DTD (entities refused), bounded nodes (the parser builds its
/// tree without recursion), then bounded nesting, so later walks cannot go deep.
pub fn parse_xml(text: &str) -> Result<roxmltree::Document<'_>, XmlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..Default::default()
        },
    )?;
    // Depth of each node from its parent's (document order visits parents first).
    let mut depth = vec![0usize; doc.descendants().count() + 1];
    for n in doc.descendants() {
        let d = n.parent().map_or(0, |p| depth[p.id().get_usize()] + 1);
        if d > MAX_DEPTH {
            return Err(XmlError::TooDeep);
        }
        depth[n.id().get_usize()] = d;
    }
    Ok(doc)
}

/// Resolves a location inside the package: absolute (`/Doc_0/…`) from the root, otherwise
/// relative to `dir`; `.` and `..` resolved without leaving the root. Result has no leading `/`.
pub fn join(dir: &str, loc: &str) -> String {
    let loc = loc.trim();
    let mut parts: Vec<&str> = if loc.starts_with('/') {
        vec![]
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in loc.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_resolves_inside_the_root() {
        assert_eq!(
            join("Doc_0/Signs", "Sign_0/Signature.xml"),
            "Doc_0/Signs/Sign_0/Signature.xml"
        );
        assert_eq!(join("Doc_0/Signs", "/Doc_0/x.xml"), "Doc_0/x.xml");
        assert_eq!(join("Doc_0", "../../../etc/passwd"), "etc/passwd");
    }

    #[test]
    fn entities_and_dtds_are_refused() {
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"xx\"><!ENTITY y \"&x;&x;\">]><a>&y;</a>";
        assert!(parse_xml(bomb).is_err());
        let deep = "<a>".repeat(5000) + &"</a>".repeat(5000);
        assert!(parse_xml(&deep).is_err());
    }
}
