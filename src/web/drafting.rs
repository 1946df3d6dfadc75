//! Drafting and editing a contract at the developer's desk: one form whose fields are named as
//! the API's (`buyers[0].id_number`), so every error and every reason a reviewer gave for
//! returning the filing lands beside the field it concerns. As the drafter types, htmx posts
//! the form to `/dev/draft/check`, which answers with the problems and the amounts in 大写,
//! swapped into each field's own slot; without JavaScript the same checks run on submission.

use super::{Chrome, Ctx, Html, PageForm, PageResult, page};
use crate::services::contracts::{
    BuyerTerms, DraftCheck, InstalmentTerms, NewContract, PaymentTerms, PropertyTerms, SellerTerms,
};
use crate::services::{self, Error, FieldError};
use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// One input of the form.
pub struct Field {
    pub name: String,
    pub id: String,
    pub label: String,
    pub value: String,
    /// `text`, `date`, `select`, `textarea`.
    pub kind: &'static str,
    /// A select's options, and which one is chosen.
    pub options: Vec<(&'static str, bool)>,
    pub inputmode: &'static str,
    pub hint: String,
    pub error: Option<String>,
    /// A reviewer's reason for returning the filing, about this field.
    pub returned: Option<String>,
    /// An amount's 大写, shown beside the figure.
    pub capital: Option<String>,
    pub required: bool,
}

/// A fieldset of the form.
pub struct Group {
    pub legend: String,
    pub fields: Vec<Field>,
    /// Errors and returned reasons about the group as a whole (`buyers`, `payment.schedule`).
    pub notes: Vec<String>,
}

fn dom_id(name: &str) -> String {
    let mut id = String::from("f-");
    for c in name.chars() {
        id.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        });
    }
    id
}

fn field(name: impl Into<String>, label: impl Into<String>, value: &str) -> Field {
    let name = name.into();
    Field {
        id: dom_id(&name),
        name,
        label: label.into(),
        value: value.to_owned(),
        kind: "text",
        options: vec![],
        inputmode: "text",
        hint: String::new(),
        error: None,
        returned: None,
        capital: None,
        required: true,
    }
}

impl Field {
    fn kind(mut self, k: &'static str) -> Self {
        self.kind = k;
        self
    }
    fn options(mut self, o: &[&'static str]) -> Self {
        self.kind = "select";
        self.options = o.iter().map(|x| (*x, *x == self.value)).collect();
        self
    }
    fn numeric(mut self) -> Self {
        self.inputmode = "decimal";
        self
    }
    fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = h.into();
        self
    }
    fn optional(mut self) -> Self {
        self.required = false;
        self
    }
}

/// The form's groups for `t`, with `rows` buyer rows and instalment rows at least.
fn groups(t: &NewContract, buyer_rows: usize, instalment_rows: usize) -> Vec<Group> {
    let mut out = Vec::new();
    let mut buyers = Vec::new();
    for i in 0..buyer_rows.max(t.buyers.len()) {
        let b = t.buyers.get(i);
        let v = |f: fn(&BuyerTerms) -> String| b.map(f).unwrap_or_default();
        let n = i + 1;
        buyers.push(field(
            format!("buyers[{i}].name"),
            format!("买受人{n} 姓名"),
            &v(|b| b.name.clone()),
        ));
        buyers.push(field(
            format!("buyers[{i}].id_number"),
            format!("买受人{n} 居民身份证号码"),
            &v(|b| b.id_number.clone()),
        ));
        buyers.push(
            field(
                format!("buyers[{i}].share_percent"),
                format!("买受人{n} 份额（%）"),
                &v(|b| {
                    if b.share_percent == 0 {
                        String::new()
                    } else {
                        b.share_percent.to_string()
                    }
                }),
            )
            .numeric(),
        );
        buyers.push(field(
            format!("buyers[{i}].phone"),
            format!("买受人{n} 联系电话"),
            &v(|b| b.phone.clone()),
        ));
        buyers.push(field(
            format!("buyers[{i}].address"),
            format!("买受人{n} 通讯地址"),
            &v(|b| b.address.clone()),
        ));
    }
    for f in buyers.iter_mut() {
        // Only the first buyer is required; other rows are used when filled.
        f.required = f.name.starts_with("buyers[0]");
    }
    out.push(Group {
        legend: "买受人（不用的行留空）".into(),
        fields: buyers,
        notes: vec![],
    });
    out.push(Group {
        legend: "价款与共有".into(),
        fields: vec![
            field("co_ownership", "共有方式", &t.co_ownership).options(&[
                "单独所有",
                "共同共有",
                "按份共有",
            ]),
            field("unit_price", "单价（元/平方米，按建筑面积）", &t.unit_price)
                .numeric()
                .hint("不得高于该房屋的备案价格。"),
        ],
        notes: vec![],
    });
    let mut payment = vec![
        field("payment.mode", "付款方式", &t.payment.mode).options(&[
            "一次性付款",
            "分期付款",
            "贷款方式付款",
        ]),
        field(
            "payment.loan_type",
            "贷款类型（贷款方式付款时填写）",
            t.payment.loan_type.as_deref().unwrap_or(""),
        )
        .optional(),
        field(
            "payment.lender",
            "贷款机构（贷款方式付款时填写）",
            t.payment.lender.as_deref().unwrap_or(""),
        )
        .optional(),
    ];
    for i in 0..instalment_rows.max(t.payment.schedule.len()) {
        let p = t.payment.schedule.get(i);
        let n = i + 1;
        let required = i == 0;
        let mut item = field(
            format!("payment.schedule[{i}].item"),
            format!("第{n}笔 款项名称"),
            p.map(|p| p.item.as_str()).unwrap_or(""),
        );
        let mut due = field(
            format!("payment.schedule[{i}].due"),
            format!("第{n}笔 付款日期"),
            p.map(|p| p.due.as_str()).unwrap_or(""),
        )
        .kind("date");
        let mut amount = field(
            format!("payment.schedule[{i}].amount"),
            format!("第{n}笔 金额（元）"),
            p.map(|p| p.amount.as_str()).unwrap_or(""),
        )
        .numeric();
        item.required = required;
        due.required = required;
        amount.required = required;
        payment.extend([item, due, amount]);
    }
    out.push(Group {
        legend: "付款（各笔合计须等于总价款）".into(),
        fields: payment,
        notes: vec![],
    });
    out.push(Group {
        legend: "交付、物业与争议".into(),
        fields: vec![
            field("delivery_date", "交付日期", &t.delivery_date).kind("date"),
            field("property.company", "前期物业服务企业", &t.property.company),
            field(
                "property.fee",
                "物业服务费（元/平方米·月）",
                &t.property.fee,
            )
            .numeric(),
            field("dispute", "争议解决方式", &t.dispute)
                .hint("例如：依法向房屋所在地人民法院起诉；或提交东莞仲裁委员会仲裁。"),
            field(
                "supplementary",
                "补充协议（每行一条，可不填）",
                &t.supplementary.join("\n"),
            )
            .kind("textarea")
            .optional(),
        ],
        notes: vec![],
    });
    out.push(Group {
        legend: "出卖人".into(),
        fields: vec![
            field("seller.address", "出卖人地址", &t.seller.address),
            field(
                "seller.legal_representative",
                "法定代表人",
                &t.seller.legal_representative,
            ),
            field(
                "seller.qualification_no",
                "房地产开发资质证书编号",
                &t.seller.qualification_no,
            ),
        ],
        notes: vec![],
    });
    out
}

/// Puts each message beside its field; a message about a whole group (`buyers`) or about no
/// field of the form goes to the group or to the list at the top.
fn place(groups: &mut [Group], errors: &[FieldError], returned: &[FieldError]) -> Vec<String> {
    let mut rest = Vec::new();
    for (list, is_returned) in [(errors, false), (returned, true)] {
        for e in list {
            let text = if is_returned {
                format!("审核退回：{}", e.message)
            } else {
                e.message.clone()
            };
            let exact = groups
                .iter_mut()
                .flat_map(|g| g.fields.iter_mut())
                .find(|f| f.name == e.field);
            if let Some(f) = exact {
                if is_returned {
                    f.returned = Some(e.message.clone());
                } else {
                    f.error = Some(e.message.clone());
                }
                continue;
            }
            let group = groups.iter_mut().find(|g| {
                g.fields
                    .iter()
                    .any(|f| !e.field.is_empty() && f.name.starts_with(&e.field))
            });
            match group {
                Some(g) => g.notes.push(text),
                None => rest.push(text),
            }
        }
    }
    rest
}

/// The contract's terms from the posted form; fields that are not numbers where numbers are
/// needed are reported beside their field.
fn terms_of(form: &PageForm) -> (NewContract, Vec<FieldError>) {
    let mut errors = Vec::new();
    let mut buyers = Vec::new();
    for i in 0..10 {
        let g = |k: &str| form.get(&format!("buyers[{i}].{k}")).trim().to_owned();
        let (name, id, share, phone, address) = (
            g("name"),
            g("id_number"),
            g("share_percent"),
            g("phone"),
            g("address"),
        );
        if [&name, &id, &share, &phone, &address]
            .iter()
            .all(|v| v.is_empty())
        {
            continue;
        }
        let share_percent = match share.parse::<u8>() {
            Ok(v) if v <= 100 => v,
            _ => {
                errors.push(FieldError::new(
                    format!("buyers[{}].share_percent", buyers.len()),
                    "integer",
                    "份额须为 1 至 100 的整数。",
                ));
                0
            }
        };
        buyers.push(BuyerTerms {
            name,
            id_number: id.to_ascii_uppercase(),
            share_percent,
            phone,
            address,
        });
    }
    let mut schedule = Vec::new();
    for i in 0..24 {
        let g = |k: &str| {
            form.get(&format!("payment.schedule[{i}].{k}"))
                .trim()
                .to_owned()
        };
        let (item, due, amount) = (g("item"), g("due"), g("amount"));
        if item.is_empty() && due.is_empty() && amount.is_empty() {
            continue;
        }
        schedule.push(InstalmentTerms { item, due, amount });
    }
    let opt = |k: &str| {
        let v = form.get(k).trim();
        (!v.is_empty()).then(|| v.to_owned())
    };
    let t = NewContract {
        unit_id: form.get("unit_id").trim().to_owned(),
        buyers,
        co_ownership: form.get("co_ownership").trim().to_owned(),
        unit_price: form.get("unit_price").trim().to_owned(),
        payment: PaymentTerms {
            mode: form.get("payment.mode").trim().to_owned(),
            loan_type: opt("payment.loan_type"),
            lender: opt("payment.lender"),
            schedule,
        },
        delivery_date: form.get("delivery_date").trim().to_owned(),
        dispute: form.get("dispute").trim().to_owned(),
        property: PropertyTerms {
            company: form.get("property.company").trim().to_owned(),
            fee: form.get("property.fee").trim().to_owned(),
        },
        supplementary: form
            .get("supplementary")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        seller: SellerTerms {
            address: form.get("seller.address").trim().to_owned(),
            legal_representative: form.get("seller.legal_representative").trim().to_owned(),
            qualification_no: form.get("seller.qualification_no").trim().to_owned(),
        },
    };
    (t, errors)
}

fn blank(unit_id: &str) -> NewContract {
    NewContract {
        unit_id: unit_id.to_owned(),
        buyers: vec![],
        co_ownership: "单独所有".into(),
        unit_price: String::new(),
        payment: PaymentTerms {
            mode: "一次性付款".into(),
            loan_type: None,
            lender: None,
            schedule: vec![],
        },
        delivery_date: String::new(),
        dispute: "依法向房屋所在地人民法院起诉".into(),
        property: PropertyTerms {
            company: String::new(),
            fee: String::new(),
        },
        supplementary: vec![],
        seller: SellerTerms {
            address: String::new(),
            legal_representative: String::new(),
            qualification_no: String::new(),
        },
    }
}

#[derive(Template)]
#[template(path = "web/draft.html")]
struct Draft {
    chrome: Chrome,
    /// Where the form posts: a new draft or an edit.
    action: String,
    unit_id: String,
    contract_id: Option<String>,
    check: DraftCheck,
    groups: Vec<Group>,
    top: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/draft_check.html")]
struct DraftCheckFragment {
    check: DraftCheck,
    groups: Vec<Group>,
    top: Vec<String>,
}

fn with_capitals(groups: &mut [Group], check: &DraftCheck) {
    for f in groups.iter_mut().flat_map(|g| g.fields.iter_mut()) {
        if let Some(i) = f
            .name
            .strip_prefix("payment.schedule[")
            .and_then(|r| r.strip_suffix("].amount"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            f.capital = check
                .instalments_capital
                .get(i)
                .filter(|c| !c.is_empty())
                .cloned();
        }
    }
}

/// Where the form goes: a new draft, or an edit of a contract.
struct Target {
    title: &'static str,
    action: String,
    contract_id: Option<String>,
}

impl Target {
    fn new_draft() -> Target {
        Target {
            title: "起草合同",
            action: "/dev/draft".into(),
            contract_id: None,
        }
    }
    fn edit(id: &str) -> Target {
        Target {
            title: "修改合同草稿",
            action: format!("/contracts/{id}/edit"),
            contract_id: Some(id.to_owned()),
        }
    }
}

fn draft_page(
    ctx: &Ctx,
    target: Target,
    t: &NewContract,
    check: DraftCheck,
    errors: &[FieldError],
    returned: &[FieldError],
) -> Draft {
    // One empty row more than filled (two at least), for a co-buyer or an instalment more.
    let mut groups = groups(
        t,
        (t.buyers.len() + 1).max(2),
        (t.payment.schedule.len() + 1).max(2),
    );
    let top = place(&mut groups, errors, returned);
    with_capitals(&mut groups, &check);
    Draft {
        chrome: ctx.chrome(target.title),
        action: target.action,
        unit_id: t.unit_id.clone(),
        contract_id: target.contract_id,
        check,
        groups,
        top,
    }
}

#[derive(Deserialize)]
pub struct UnitQuery {
    unit: Option<String>,
}

pub async fn new_draft(ctx: Ctx, Query(q): Query<UnitQuery>) -> PageResult {
    let caller = ctx.only(&[crate::domain::Role::Developer])?;
    let t = blank(q.unit.as_deref().unwrap_or(""));
    let mut check = services::contracts::check_draft(&ctx.services, &caller, &t)
        .await
        .map_err(|e| ctx.fail(e))?;
    // A blank form has nothing wrong yet.
    check.errors.clear();
    Ok(page(draft_page(
        &ctx,
        Target::new_draft(),
        &t,
        check,
        &[],
        &[],
    )))
}

pub async fn create(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.only(&[crate::domain::Role::Developer])?;
    let (t, mut errors) = terms_of(&form);
    if errors.is_empty() {
        match services::contracts::create(&ctx.services, &caller, t.clone()).await {
            Ok(v) => {
                return Ok(ctx.done(
                    &format!("/contracts/{}", v.id),
                    "草稿已保存。请由另一位有确认权限的同事确认。",
                ));
            }
            Err(Error::Invalid { fields, .. }) => errors = fields,
            Err(e) => return Err(ctx.fail(e)),
        }
    }
    let check = services::contracts::check_draft(&ctx.services, &caller, &t)
        .await
        .map_err(|e| ctx.fail(e))?;
    let page_ = draft_page(&ctx, Target::new_draft(), &t, check, &errors, &[]);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(page_)).into_response())
}

/// The inline check (htmx): the summary, and every field's error and 大写 slot out of band.
pub async fn check(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.only(&[crate::domain::Role::Developer])?;
    let (t, mut errors) = terms_of(&form);
    let check = services::contracts::check_draft(&ctx.services, &caller, &t)
        .await
        .map_err(|e| ctx.fail(e))?;
    errors.extend(check.errors.iter().cloned());
    // The same rows the form has, so every slot is answered (and cleared when right again).
    let buyer_rows = (0..10)
        .filter(|i| {
            form.0
                .iter()
                .any(|(k, _)| k.starts_with(&format!("buyers[{i}].")))
        })
        .count();
    let instalment_rows = (0..24)
        .filter(|i| {
            form.0
                .iter()
                .any(|(k, _)| k.starts_with(&format!("payment.schedule[{i}].")))
        })
        .count();
    let mut groups = groups(&t, buyer_rows, instalment_rows);
    let top = place(&mut groups, &errors, &[]);
    with_capitals(&mut groups, &check);
    let body = DraftCheckFragment { check, groups, top }
        .render()
        .map_err(|e| ctx.fail(Error::Internal(e.into())))?;
    Ok(Html(body).into_response())
}

pub async fn edit_page(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let caller = ctx.only(&[crate::domain::Role::Developer])?;
    let s = &ctx.services;
    let t = services::contracts::draft_terms(s, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let check = services::contracts::check_draft(s, &caller, &t)
        .await
        .map_err(|e| ctx.fail(e))?;
    let errors = check.errors.clone();
    let returned = last_returned(&ctx, &id).await?;
    Ok(page(draft_page(
        &ctx,
        Target::edit(&id),
        &t,
        check,
        &errors,
        &returned,
    )))
}

/// The reasons the last return of the filing gave, shown beside their fields while the
/// developer corrects the draft that followed it.
async fn last_returned(ctx: &Ctx, id: &str) -> Result<Vec<FieldError>, Response> {
    let caller = ctx.caller()?;
    services::contracts::last_return_reasons(&ctx.services, caller, id)
        .await
        .map_err(|e| ctx.fail(e))
}

pub async fn edit(ctx: Ctx, Path(id): Path<String>, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.only(&[crate::domain::Role::Developer])?;
    let (t, mut errors) = terms_of(&form);
    if errors.is_empty() {
        match services::contracts::edit(&ctx.services, &caller, &id, t.clone()).await {
            Ok(v) => {
                return Ok(ctx.done(
                    &format!("/contracts/{}", v.id),
                    "修改已保存（新版本）。请由另一位同事确认。",
                ));
            }
            Err(Error::Invalid { fields, .. }) => errors = fields,
            Err(e) => return Err(ctx.fail(e)),
        }
    }
    let check = services::contracts::check_draft(&ctx.services, &caller, &t)
        .await
        .map_err(|e| ctx.fail(e))?;
    let returned = last_returned(&ctx, &id).await?;
    let page_ = draft_page(&ctx, Target::edit(&id), &t, check, &errors, &returned);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(page_)).into_response())
}
