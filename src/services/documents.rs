//! Documents: the pre-sale contract rendered from its template and data. Bad data is refused with
//! field errors before any PDF is made, including text the font cannot show.

use super::{Error, FieldError};
use crate::domain::contract::{ContractData, mask_id_number};
use crate::domain::{Area, Money};
use crate::pdf::font::Font;
use crate::pdf::layout::{self, Block, Metadata};
use crate::pdf::numerals::capital_amount;
use crate::pdf::template::{FieldSpec, TableData, Template};
use std::collections::BTreeMap;

/// The contract template shipped with this build (templates/contract/gf-2014-0171.toml).
pub const CONTRACT_TEMPLATE: &str = include_str!("../../templates/contract/gf-2014-0171.toml");

#[derive(Debug, Clone)]
pub struct RenderedContract {
    pub pdf: Vec<u8>,
    pub pages: usize,
    pub template_id: String,
    pub template_version: String,
    pub template_hash: String,
    /// Names of the empty signature fields, in order: buyers, the seller's seal, the centre's seal.
    pub fields: Vec<String>,
}

fn money_text(yuan: &str) -> String {
    Money::parse_yuan(yuan)
        .map(|m| m.to_string())
        .unwrap_or_else(|_| yuan.to_owned())
}

fn values(d: &ContractData, verify_url: &str) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let mut put = |k: &str, s: String| {
        v.insert(k.to_owned(), s);
    };
    put("contract_no", d.contract_no.clone());
    put("signed_on", d.signed_on.clone());
    put("verify_url", verify_url.to_owned());
    put("seller.name", d.seller.name.clone());
    put("seller.uscc", d.seller.uscc.clone());
    put("seller.address", d.seller.address.clone());
    put(
        "seller.legal_representative",
        d.seller.legal_representative.clone(),
    );
    put("seller.qualification_no", d.seller.qualification_no.clone());
    put("buyer_count", d.buyers.len().to_string());
    put("co_ownership", d.co_ownership.clone());
    put("project.name", d.project.name.clone());
    put("project.town", d.project.town.clone());
    put("project.parcel_code", d.project.parcel_code.clone());
    put(
        "project.land_certificate_no",
        d.project.land_certificate_no.clone(),
    );
    put("project.land_use", d.project.land_use.clone());
    put("project.land_term_end", d.project.land_term_end.clone());
    put(
        "project.planning_permit_no",
        d.project.planning_permit_no.clone(),
    );
    put(
        "project.construction_permit_no",
        d.project.construction_permit_no.clone(),
    );
    put("permit.number", d.permit.number.clone());
    put("permit.authority", d.permit.authority.clone());
    put("unit.building", d.unit.building.clone());
    put("unit.room_no", d.unit.room_no.clone());
    put("unit.floor", d.unit.floor.to_string());
    put("unit.floors_above", d.unit.floors_above.to_string());
    put("unit.floors_below", d.unit.floors_below.to_string());
    put(
        "unit.floors_total",
        (d.unit.floors_above + d.unit.floors_below).to_string(),
    );
    put("unit.unit_number", d.unit.unit_number.clone());
    put("unit.use", d.unit.use_type.clone());
    put("unit.storey_height", d.unit.storey_height.clone());
    put("unit.gross_area", d.unit.gross_area.clone());
    put("mortgage", d.mortgage.clone());
    put("price.basis", d.price.basis.clone());
    put("price.unit_price", money_text(&d.price.unit_price));
    put("price.total", money_text(&d.price.total));
    put(
        "price.total_capital",
        Money::parse_yuan(&d.price.total)
            .map(|m| capital_amount(m.0))
            .unwrap_or_default(),
    );
    put("payment.mode", d.payment.mode.clone());
    let description = match d.payment.mode.as_str() {
        "贷款方式付款" => format!(
            "买受人以{}方式向{}申请贷款，首付款以外的房价款由贷款机构直接划入预售资金监管账户。",
            d.payment
                .loan_type
                .clone()
                .unwrap_or_else(|| "商业贷款".into()),
            d.payment.lender.clone().unwrap_or_default()
        ),
        "分期付款" => format!("买受人分 {} 期支付房价款。", d.payment.schedule.len()),
        _ => "买受人应当在签约当日一次性支付全部房价款。".into(),
    };
    put("payment.description", description);
    put("escrow.bank", d.escrow.bank.clone());
    put("escrow.account_name", d.escrow.account_name.clone());
    put("escrow.account_no", d.escrow.account_no.clone());
    put("delivery_date", d.delivery_date.clone());
    put("filing_deadline_days", d.filing_deadline_days.to_string());
    put(
        "registration_deadline_days",
        d.registration_deadline_days.to_string(),
    );
    put("dispute", d.dispute.clone());
    put("property.company", d.property.company.clone());
    put("property.fee", d.property.fee.clone());
    let supplementary = if d.supplementary.is_empty() {
        "无。".to_owned()
    } else {
        d.supplementary
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {s}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    put("supplementary", supplementary);
    v
}

fn tables(d: &ContractData) -> BTreeMap<String, TableData> {
    let mut t = BTreeMap::new();
    let mut buyers = vec![
        ["姓名", "证件", "证件号码", "联系电话", "通讯地址", "份额"]
            .map(String::from)
            .to_vec(),
    ];
    for b in &d.buyers {
        buyers.push(vec![
            b.name.clone(),
            b.id_type.clone(),
            mask_id_number(&b.id_number),
            b.phone.clone(),
            b.address.clone(),
            format!("{}%", b.share),
        ]);
    }
    t.insert(
        "buyers".into(),
        (vec![0.1, 0.14, 0.2, 0.15, 0.31, 0.1], buyers),
    );
    let area = |s: &str| {
        Area::parse(s)
            .map(|a| a.to_string())
            .unwrap_or_else(|_| s.to_owned())
    };
    t.insert(
        "areas".into(),
        (
            vec![0.4, 0.3, 0.3],
            vec![
                vec!["项目".into(), "面积（平方米）".into(), "说明".into()],
                vec![
                    "套内建筑面积".into(),
                    area(&d.unit.internal_area),
                    "预测".into(),
                ],
                vec![
                    "分摊共有建筑面积".into(),
                    area(&d.unit.shared_area),
                    "预测".into(),
                ],
                vec![
                    "建筑面积".into(),
                    area(&d.unit.gross_area),
                    "套内建筑面积 + 分摊共有建筑面积".into(),
                ],
            ],
        ),
    );
    let mut schedule = vec![
        ["期次", "付款日期", "金额（元）", "大写"]
            .map(String::from)
            .to_vec(),
    ];
    for p in &d.payment.schedule {
        let m = Money::parse_yuan(&p.amount).ok();
        schedule.push(vec![
            p.item.clone(),
            p.due.clone(),
            m.map(|m| m.to_string()).unwrap_or_else(|| p.amount.clone()),
            m.map(|m| capital_amount(m.0)).unwrap_or_default(),
        ]);
    }
    t.insert(
        "payment_schedule".into(),
        (vec![0.16, 0.2, 0.22, 0.42], schedule),
    );
    t
}

/// The signature fields of a contract: one per buyer, the seller's seal, the centre's seal.
pub fn signature_fields(d: &ContractData) -> Vec<FieldSpec> {
    let mut f: Vec<FieldSpec> = d
        .buyers
        .iter()
        .enumerate()
        .map(|(i, b)| FieldSpec {
            field: format!("buyer-{}", i + 1),
            label: format!("买受人（签名）：{}", b.name),
            width: 200.0,
            height: 56.0,
        })
        .collect();
    f.push(FieldSpec {
        field: "seller-seal".into(),
        label: format!("出卖人（盖章）：{}", d.seller.name),
        width: 130.0,
        height: 130.0,
    });
    f.push(FieldSpec {
        field: "centre-seal".into(),
        label: "不动产登记中心（备案专用章）：".into(),
        width: 130.0,
        height: 130.0,
    });
    f
}

/// The refusal of a text the document font cannot show, naming each character and its code
/// point (a rare character 生僻字 may look like nothing in the reader's own font).
pub fn unrenderable(font: &Font, field: &str, text: &str) -> Option<FieldError> {
    let missing = font.missing(text);
    if missing.is_empty() {
        return None;
    }
    let named: Vec<String> = missing
        .iter()
        .map(|c| format!("“{c}”（U+{:04X}）", *c as u32))
        .collect();
    Some(FieldError::new(
        field,
        "unsupported_character",
        format!(
            "合同字体中没有这些字符，无法生成文件：{}。请核对证件上的写法或联系登记中心。",
            named.join("、")
        ),
    ))
}

/// A template parsed once per process (parsing the TOML text costs more than filling it): the
/// templates are compiled into the binary, so their text identifies them.
fn parsed(template_text: &str) -> Result<std::sync::Arc<Template>, Error> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], Arc<Template>>>> = OnceLock::new();
    let key = openssl::sha::sha256(template_text.as_bytes());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(t);
    }
    let t = Arc::new(Template::parse(template_text).map_err(|e| Error::Internal(e.into()))?);
    if let Ok(mut m) = cache.lock()
        && m.len() < 64
    {
        m.insert(key, t.clone());
    }
    Ok(t)
}

/// Makes now what the first documents of a process would otherwise pay for: the templates
/// parsed, the contract template's base subset and the face cut to GB 2312 (from which small
/// subsets come). About 0.1 s (a cold `virtual-window render` takes 0.13 s, a warm contract
/// 4 ms); run before an instance answers, so the first buyers after a start or a restart
/// wait no longer than the others.
pub fn warm_up(font: &Font) -> Result<(), Error> {
    for text in [
        CONTRACT_TEMPLATE,
        FILING_RECORD_TEMPLATE,
        REGISTRATION_CERTIFICATE_TEMPLATE,
    ] {
        parsed(text)?;
    }
    let contract = parsed(CONTRACT_TEMPLATE)?;
    layout::base_subset(font, &contract.fixed_text()).map_err(|e| Error::Internal(e.into()))?;
    let glyphs: std::collections::BTreeSet<u16> = "买受人签名日期：二零二六年十二月四日张伟"
        .chars()
        .filter_map(|c| font.glyph(c))
        .collect();
    font.subset(&glyphs)
        .map_err(|e| Error::Internal(e.into()))?;
    crate::pki::sm2::warm_up();
    Ok(())
}

/// The contract documents this process rendered: (data, address, time) → the PDF's SHA-256.
/// Rendering is deterministic, so the reviewer's check 9 (re-render and compare) need not render
/// again what this process rendered itself; another instance renders once and remembers.
static RENDERS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<[u8; 32], String>>> =
    std::sync::OnceLock::new();

fn render_key(data: &ContractData, public_url: &str, created: &str) -> Option<[u8; 32]> {
    let mut h = openssl::sha::Sha256::new();
    h.update(&openssl::sha::sha256(CONTRACT_TEMPLATE.as_bytes()));
    h.update(&serde_json::to_vec(data).ok()?);
    h.update(public_url.as_bytes());
    h.update(&[0]);
    h.update(created.as_bytes());
    Some(h.finish())
}

pub fn remember_render(data: &ContractData, public_url: &str, created: &str, sha256: &str) {
    let Some(key) = render_key(data, public_url, created) else {
        return;
    };
    if let Ok(mut m) = RENDERS.get_or_init(Default::default).lock() {
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(key, sha256.to_owned());
    }
}

pub fn remembered_render(data: &ContractData, public_url: &str, created: &str) -> Option<String> {
    let key = render_key(data, public_url, created)?;
    RENDERS.get()?.lock().ok()?.get(&key).cloned()
}

/// Validates the data and renders the contract. `created` is the document time (ISO 8601), part
/// of the output, so the same data, template and time give the same bytes.
pub fn render_contract(
    font: &Font,
    template_text: &str,
    data: &ContractData,
    public_url: &str,
    created: &str,
) -> Result<RenderedContract, Error> {
    let mut errors: Vec<FieldError> = data
        .validate()
        .into_iter()
        .map(|i| FieldError::new(i.field, i.rule, i.message))
        .collect();
    let template = parsed(template_text)?;
    let verify_url = format!("{public_url}/v/{}", data.contract_no);
    let values = values(data, &verify_url);
    let tables = tables(data);
    let fields = signature_fields(data);
    // Every character must exist in the font: a contract with a missing glyph is not readable.
    for (key, value) in &values {
        errors.extend(unrenderable(font, key, value));
    }
    for (name, (_, rows)) in &tables {
        for cell in rows.iter().flatten() {
            errors.extend(unrenderable(font, &format!("table.{name}"), cell));
        }
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    let blocks = template
        .fill(&values, &tables, &fields)
        .map_err(|e| Error::Internal(anyhow::anyhow!("template {}: {e}", template.id)))?;
    let mut keywords = vec![
        format!("合同编号:{}", data.contract_no),
        format!("出卖人:{}", data.seller.name),
    ];
    keywords.extend(data.buyers.iter().map(|b| format!("买受人:{}", b.name)));
    keywords.push(format!(
        "模板:{} {} sha256:{}",
        template.id, template.version, template.hash
    ));
    let meta = Metadata {
        title: format!("{} {}", template.title, data.contract_no),
        keywords,
        author: data.seller.name.clone(),
        created: created.to_owned(),
        header: format!("{}　合同编号：{}", template.title, data.contract_no),
    };
    // The template's characters come from a subset made once per template version; the
    // contract's own data adds a small second one.
    let base =
        layout::base_subset(font, &template.fixed_text()).map_err(|e| Error::Internal(e.into()))?;
    let rendered = layout::render_with_base(font, &meta, &blocks, Some(&base))
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(RenderedContract {
        pdf: rendered.bytes,
        pages: rendered.pages,
        template_id: template.id.clone(),
        template_version: template.version.clone(),
        template_hash: template.hash.clone(),
        fields: rendered.fields.into_iter().map(|f| f.field).collect(),
    })
}

/// One chapter of a contract as accessible text: its heading and what it says, paragraph by
/// paragraph (a table row is one line, its cells joined).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Chapter {
    /// From 0 (the cover and the notes before chapter one).
    pub number: usize,
    pub title: String,
    pub paragraphs: Vec<String>,
}

/// The contract's text by chapter, filled from the same data and template as its PDF (the same
/// words the buyer signs).
pub fn contract_chapters(
    template_text: &str,
    data: &ContractData,
    public_url: &str,
) -> Result<Vec<Chapter>, Error> {
    let template = parsed(template_text)?;
    let verify_url = format!("{public_url}/v/{}", data.contract_no);
    let blocks = template
        .fill(
            &values(data, &verify_url),
            &tables(data),
            &signature_fields(data),
        )
        .map_err(|e| Error::Internal(anyhow::anyhow!("template {}: {e}", template.id)))?;
    let mut chapters = vec![Chapter {
        number: 0,
        title: "封面与说明".into(),
        paragraphs: vec![],
    }];
    for b in blocks {
        let last = chapters.len() - 1;
        match b {
            Block::Heading(h) if h.starts_with('第') || h.starts_with("附件") => {
                chapters.push(Chapter {
                    number: chapters.len(),
                    title: h,
                    paragraphs: vec![],
                });
            }
            Block::Title(t) | Block::Heading(t) => chapters[last].paragraphs.push(t),
            Block::Paragraph { text, .. } => chapters[last].paragraphs.push(text),
            Block::Table { rows, .. } => chapters[last]
                .paragraphs
                .extend(rows.into_iter().map(|r| r.join("　"))),
            Block::QrCode { caption, .. } => chapters[last].paragraphs.push(caption),
            Block::SignatureField { label, .. } => chapters[last].paragraphs.push(label),
            Block::Spacer(_) | Block::PageBreak => {}
        }
    }
    Ok(chapters)
}

/// The filing record template (templates/filing-record.toml).
pub const FILING_RECORD_TEMPLATE: &str = include_str!("../../templates/filing-record.toml");
/// The registration certificate template (templates/registration-certificate.toml).
pub const REGISTRATION_CERTIFICATE_TEMPLATE: &str =
    include_str!("../../templates/registration-certificate.toml");

/// What a filing record states.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilingRecordData {
    pub filing_no: String,
    pub filed_on: String,
    /// SHA-256 of the filed contract PDF, hex.
    pub contract_sha256: String,
    pub contract: ContractData,
}

/// What an electronic registration certificate (不动产登记证明) states.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationCertificateData {
    /// Default format `粤(YYYY)东莞市不动产证明第NNNNNNN号`.
    pub certificate_no: String,
    /// 预告登记 / 预购商品房买卖.
    pub matter: String,
    pub right_holder: String,
    pub obligor: String,
    pub location: String,
    pub unit_number: String,
    /// Contract and filing numbers, price, area.
    pub other: String,
    pub notes: String,
    pub authority: String,
    pub recorded_on: String,
}

/// A rendered document other than the contract.
#[derive(Debug, Clone)]
pub struct RenderedDocument {
    pub pdf: Vec<u8>,
    pub pages: usize,
    pub template_hash: String,
}

/// Who issues a document, its number and time, and its keywords.
struct Issued<'a> {
    keywords: Vec<String>,
    author: &'a str,
    number: &'a str,
    created: &'a str,
}

fn render_simple(
    font: &Font,
    template_text: &str,
    values: BTreeMap<String, String>,
    tables: BTreeMap<String, TableData>,
    issued: Issued<'_>,
) -> Result<RenderedDocument, Error> {
    let Issued {
        keywords,
        author,
        number,
        created,
    } = issued;
    let mut errors = Vec::new();
    for (key, value) in &values {
        errors.extend(unrenderable(font, key, value));
        if value.trim().is_empty() {
            errors.push(FieldError::new(key.clone(), "required", "此项必须填写。"));
        }
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    let template = parsed(template_text)?;
    let blocks = template
        .fill(&values, &tables, &centre_seal_field())
        .map_err(|e| Error::Internal(anyhow::anyhow!("template {}: {e}", template.id)))?;
    let mut keywords = keywords;
    keywords.push(format!(
        "模板:{} {} sha256:{}",
        template.id, template.version, template.hash
    ));
    let meta = Metadata {
        title: format!("{} {number}", template.title),
        keywords,
        author: author.to_owned(),
        created: created.to_owned(),
        header: template.title.clone(),
    };
    let r = layout::render(font, &meta, &blocks).map_err(|e| Error::Internal(e.into()))?;
    Ok(RenderedDocument {
        pdf: r.bytes,
        pages: r.pages,
        template_hash: template.hash.clone(),
    })
}

pub fn render_filing_record(
    font: &Font,
    d: &FilingRecordData,
    public_url: &str,
    created: &str,
) -> Result<RenderedDocument, Error> {
    let c = &d.contract;
    let buyers = c
        .buyers
        .iter()
        .map(|b| b.name.clone())
        .collect::<Vec<_>>()
        .join("、");
    let mut values = BTreeMap::new();
    values.insert("filing_no".into(), d.filing_no.clone());
    values.insert("filed_on".into(), d.filed_on.clone());
    values.insert("contract_no".into(), c.contract_no.clone());
    values.insert("signed_on".into(), c.signed_on.clone());
    values.insert("seller".into(), c.seller.name.clone());
    values.insert("buyers".into(), buyers.clone());
    values.insert("contract_sha256".into(), d.contract_sha256.clone());
    values.insert(
        "verify_url".into(),
        format!("{public_url}/v/{}", c.contract_no),
    );
    let rows = vec![
        vec!["项目".into(), "内容".into()],
        vec!["项目名称".into(), c.project.name.clone()],
        vec![
            "房屋坐落".into(),
            format!(
                "{}{}{}{}号房",
                c.project.town, c.project.name, c.unit.building, c.unit.room_no
            ),
        ],
        vec!["不动产单元号".into(), c.unit.unit_number.clone()],
        vec!["建筑面积（平方米）".into(), c.unit.gross_area.clone()],
        vec!["合同总价（元）".into(), money_text(&c.price.total)],
        vec!["预售许可证号".into(), c.permit.number.clone()],
        vec![
            "出卖人".into(),
            format!("{}（{}）", c.seller.name, c.seller.uscc),
        ],
        vec!["买受人".into(), buyers],
    ];
    let mut tables = BTreeMap::new();
    tables.insert("facts".to_owned(), (vec![0.3, 0.7], rows));
    render_simple(
        font,
        FILING_RECORD_TEMPLATE,
        values,
        tables,
        Issued {
            keywords: vec![
                format!("备案编号:{}", d.filing_no),
                format!("合同编号:{}", c.contract_no),
            ],
            author: "不动产登记中心",
            number: &d.filing_no,
            created,
        },
    )
}

/// The public status page a certificate's QR code points at.
pub fn certificate_url(public_url: &str, certificate_no: &str) -> String {
    format!(
        "{public_url}/c/{}",
        certificate_no
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    )
}

/// The registration certificate's template values and table.
fn certificate_values(
    d: &RegistrationCertificateData,
    public_url: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, TableData>) {
    let mut values = BTreeMap::new();
    values.insert("certificate_no".into(), d.certificate_no.clone());
    values.insert("authority".into(), d.authority.clone());
    values.insert("recorded_on".into(), d.recorded_on.clone());
    values.insert(
        "verify_url".into(),
        certificate_url(public_url, &d.certificate_no),
    );
    let rows = vec![
        vec!["证明权利或事项".into(), d.matter.clone()],
        vec!["权利人（申请人）".into(), d.right_holder.clone()],
        vec!["义务人".into(), d.obligor.clone()],
        vec!["坐落".into(), d.location.clone()],
        vec!["不动产单元号".into(), d.unit_number.clone()],
        vec!["其他".into(), d.other.clone()],
        vec!["附记".into(), d.notes.clone()],
    ];
    let mut tables = BTreeMap::new();
    tables.insert("entries".to_owned(), (vec![0.26, 0.74], rows));
    for (field, value) in [
        ("matter", &d.matter),
        ("right_holder", &d.right_holder),
        ("obligor", &d.obligor),
        ("location", &d.location),
        ("unit_number", &d.unit_number),
    ] {
        values.insert(format!("entry.{field}"), value.clone());
    }
    (values, tables)
}

/// The centre's seal on a registration certificate: one field, labelled as on paper.
fn centre_seal_field() -> [FieldSpec; 1] {
    [FieldSpec {
        field: "centre-seal".into(),
        label: "不动产登记中心（印章）：".into(),
        width: 130.0,
        height: 130.0,
    }]
}

pub fn render_registration_certificate(
    font: &Font,
    d: &RegistrationCertificateData,
    public_url: &str,
    created: &str,
) -> Result<RenderedDocument, Error> {
    let (values, tables) = certificate_values(d, public_url);
    render_simple(
        font,
        REGISTRATION_CERTIFICATE_TEMPLATE,
        values,
        tables,
        Issued {
            keywords: vec![
                format!("证明号:{}", d.certificate_no),
                format!("权利人:{}", d.right_holder),
            ],
            author: &d.authority,
            number: &d.certificate_no,
            created,
        },
    )
}

/// The registration certificate's blocks, filled from the same template as its PDF: what the
/// OFD version lays out, so both say the same.
pub fn registration_certificate_blocks(
    d: &RegistrationCertificateData,
    public_url: &str,
) -> Result<Vec<crate::pdf::layout::Block>, Error> {
    let (values, tables) = certificate_values(d, public_url);
    let template = parsed(REGISTRATION_CERTIFICATE_TEMPLATE)?;
    template
        .fill(&values, &tables, &centre_seal_field())
        .map_err(|e| Error::Internal(anyhow::anyhow!("template {}: {e}", template.id)))
}
