//! The pre-sale contract's data (the fields GF-2014-0171 asks for) and the rules it must satisfy
//! before any document is made: areas that add up, a price that is unit price × area, payments
//! that sum to the total, dates in order, an escrow account. Every broken rule names its field.

use super::measure::{Area, Money};
use serde::{Deserialize, Serialize};
use time::Date;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContractData {
    pub contract_no: String,
    /// The online signing date (YYYY-MM-DD).
    pub signed_on: String,
    pub seller: Seller,
    pub buyers: Vec<Buyer>,
    /// 共同共有 or 按份共有 (one buyer: 单独所有).
    pub co_ownership: String,
    pub project: Project,
    pub permit: Permit,
    pub unit: Unit,
    /// Existing mortgages on the land or the project, or 无.
    pub mortgage: String,
    pub price: Price,
    pub payment: Payment,
    pub escrow: Escrow,
    pub delivery_date: String,
    pub filing_deadline_days: u32,
    pub registration_deadline_days: u32,
    /// How disputes are settled: a court, or a named arbitration body.
    pub dispute: String,
    pub property: PropertyManagement,
    #[serde(default)]
    pub supplementary: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Seller {
    pub name: String,
    pub uscc: String,
    pub address: String,
    pub legal_representative: String,
    pub qualification_no: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Buyer {
    pub name: String,
    pub id_type: String,
    /// Shown masked in the document body (the signature and the filing carry the identity).
    pub id_number: String,
    pub phone: String,
    pub address: String,
    /// Percent, two decimals at most ("50", "33.33").
    pub share: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    pub town: String,
    pub parcel_code: String,
    pub land_certificate_no: String,
    pub land_use: String,
    pub land_term_end: String,
    pub planning_permit_no: String,
    pub construction_permit_no: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Permit {
    pub number: String,
    pub authority: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub building: String,
    pub room_no: String,
    pub floor: i32,
    pub floors_above: i32,
    pub floors_below: i32,
    pub unit_number: String,
    #[serde(rename = "use")]
    pub use_type: String,
    /// Metres, e.g. "3.00".
    pub storey_height: String,
    pub gross_area: String,
    pub internal_area: String,
    pub shared_area: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// 套内面积, 建筑面积 or 按套.
    pub basis: String,
    /// Yuan per m² (or per unit for 按套).
    pub unit_price: String,
    /// Yuan.
    pub total: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// 一次性付款, 分期付款 or 贷款方式付款.
    pub mode: String,
    /// For loans: 商业贷款, 公积金贷款 or 组合贷款.
    #[serde(default)]
    pub loan_type: Option<String>,
    /// For loans: the lending bank.
    #[serde(default)]
    pub lender: Option<String>,
    pub schedule: Vec<Instalment>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Instalment {
    pub due: String,
    /// Yuan.
    pub amount: String,
    /// 定金, 首付款, 第二期, 贷款 …
    pub item: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Escrow {
    pub bank: String,
    pub account_name: String,
    pub account_no: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyManagement {
    pub company: String,
    /// Yuan per m² per month.
    pub fee: String,
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub field: String,
    pub rule: &'static str,
    pub message: String,
}

fn issue(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Issue {
    Issue {
        field: field.into(),
        rule,
        message: message.into(),
    }
}

pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

impl ContractData {
    /// Every rule, all at once (一次性告知).
    pub fn validate(&self) -> Vec<Issue> {
        let mut out = Vec::new();
        let area = |field: &str, v: &str, out: &mut Vec<Issue>| match Area::parse(v) {
            Ok(a) if a.0 > 0 => Some(a),
            _ => {
                out.push(issue(field, "format", "面积须为正数，最多两位小数。"));
                None
            }
        };
        let money = |field: &str, v: &str, out: &mut Vec<Issue>| match Money::parse_yuan(v) {
            Ok(m) if m.0 > 0 => Some(m),
            _ => {
                out.push(issue(field, "format", "金额须为正数，最多两位小数。"));
                None
            }
        };
        let required = [
            ("contract_no", &self.contract_no),
            ("seller.name", &self.seller.name),
            ("seller.uscc", &self.seller.uscc),
            ("project.name", &self.project.name),
            ("permit.number", &self.permit.number),
            ("unit.unit_number", &self.unit.unit_number),
            ("escrow.bank", &self.escrow.bank),
            ("escrow.account_name", &self.escrow.account_name),
            ("escrow.account_no", &self.escrow.account_no),
            ("dispute", &self.dispute),
        ];
        for (field, value) in required {
            if value.trim().is_empty() {
                out.push(issue(field, "required", "此项必须填写。"));
            }
        }

        // Identifiers: the seller's USCC and each buyer's ID number, with their check characters.
        // Birth dates are judged against the contract's date (no clock in the domain).
        if !self.seller.uscc.trim().is_empty()
            && let Err(r) = super::identity::Uscc::parse(&self.seller.uscc)
        {
            out.push(issue("seller.uscc", r.rule, r.message));
        }
        let as_of = parse_date(&self.signed_on).unwrap_or(time::macros::date!(9999 - 12 - 31));
        for (i, b) in self.buyers.iter().enumerate() {
            if let Err(r) = super::identity::IdNumber::parse(&b.id_number, as_of) {
                out.push(issue(format!("buyers[{i}].id_number"), r.rule, r.message));
            }
            if let Err(r) = super::identity::PersonName::parse(&b.name) {
                out.push(issue(format!("buyers[{i}].name"), r.rule, r.message));
            }
        }

        // Areas: gross = internal + shared, to the 0.01 m².
        let gross = area("unit.gross_area", &self.unit.gross_area, &mut out);
        let internal = area("unit.internal_area", &self.unit.internal_area, &mut out);
        let shared = area("unit.shared_area", &self.unit.shared_area, &mut out);
        if let (Some(g), Some(i), Some(s)) = (gross, internal, shared)
            && g.0 != i.0 + s.0
        {
            out.push(issue(
                "unit.gross_area",
                "areas_do_not_add_up",
                format!("建筑面积 {g} 不等于套内面积 {i} 与分摊面积 {s} 之和。"),
            ));
        }

        // Price: total = unit price × the chosen area (or the per-unit price).
        let unit_price = money("price.unit_price", &self.price.unit_price, &mut out);
        let total = money("price.total", &self.price.total, &mut out);
        if let (Some(up), Some(t)) = (unit_price, total) {
            let expected = match self.price.basis.as_str() {
                "建筑面积" => gross.and_then(|a| up.times_area(a)),
                "套内面积" => internal.and_then(|a| up.times_area(a)),
                "按套" => Some(up),
                _ => {
                    out.push(issue(
                        "price.basis",
                        "one_of",
                        "计价方式须为 套内面积、建筑面积 或 按套。",
                    ));
                    None
                }
            };
            if let Some(e) = expected
                && e != t
            {
                out.push(issue(
                    "price.total",
                    "total_mismatch",
                    format!("总价款应为 {e} 元（单价 × 面积），而不是 {t} 元。"),
                ));
            }
        }

        // Payment schedule: amounts sum to the total, dates increase, a lender for loans.
        let mut sum = 0i64;
        let mut last: Option<Date> = None;
        if self.payment.schedule.is_empty() {
            out.push(issue("payment.schedule", "required", "须列明付款计划。"));
        }
        for (i, inst) in self.payment.schedule.iter().enumerate() {
            if let Some(m) = money(
                &format!("payment.schedule[{i}].amount"),
                &inst.amount,
                &mut out,
            ) {
                sum += m.0;
            }
            match parse_date(&inst.due) {
                Some(d) => {
                    if last.is_some_and(|l| d < l) {
                        out.push(issue(
                            format!("payment.schedule[{i}].due"),
                            "dates_increase",
                            "付款日期须按时间先后排列。",
                        ));
                    }
                    last = Some(d);
                }
                None => out.push(issue(
                    format!("payment.schedule[{i}].due"),
                    "date",
                    "日期格式须为 YYYY-MM-DD。",
                )),
            }
        }
        if let Some(t) = total
            && !self.payment.schedule.is_empty()
            && sum != t.0
        {
            out.push(issue(
                "payment.schedule",
                "instalments_do_not_sum",
                format!("各期付款合计 {} 元，不等于总价款 {t} 元。", Money(sum)),
            ));
        }
        match self.payment.mode.as_str() {
            "一次性付款" | "分期付款" => {}
            "贷款方式付款" => {
                if self
                    .payment
                    .lender
                    .as_deref()
                    .is_none_or(|l| l.trim().is_empty())
                {
                    out.push(issue(
                        "payment.lender",
                        "required",
                        "贷款方式付款须写明贷款机构。",
                    ));
                }
            }
            _ => out.push(issue(
                "payment.mode",
                "one_of",
                "付款方式须为 一次性付款、分期付款 或 贷款方式付款。",
            )),
        }

        // Dates: delivery after signing; filing within 30 days.
        let signed = parse_date(&self.signed_on);
        if signed.is_none() {
            out.push(issue("signed_on", "date", "日期格式须为 YYYY-MM-DD。"));
        }
        match (signed, parse_date(&self.delivery_date)) {
            (_, None) => out.push(issue("delivery_date", "date", "日期格式须为 YYYY-MM-DD。")),
            (Some(s), Some(d)) if d <= s => {
                out.push(issue(
                    "delivery_date",
                    "after_signing",
                    "交付日期须晚于签约日期。",
                ));
            }
            _ => {}
        }
        if self.filing_deadline_days == 0 || self.filing_deadline_days > 30 {
            out.push(issue(
                "filing_deadline_days",
                "at_most_30",
                "合同备案期限须为 1–30 日。",
            ));
        }

        // Buyers and their shares.
        if self.buyers.is_empty() {
            out.push(issue("buyers", "required", "至少须有一名买受人。"));
        }
        let mut shares = 0i64;
        for (i, b) in self.buyers.iter().enumerate() {
            if b.name.trim().is_empty() {
                out.push(issue(
                    format!("buyers[{i}].name"),
                    "required",
                    "此项必须填写。",
                ));
            }
            match Money::parse_yuan(&b.share) {
                Ok(s) => shares += s.0,
                Err(_) => out.push(issue(
                    format!("buyers[{i}].share"),
                    "format",
                    "份额须为百分数，最多两位小数。",
                )),
            }
        }
        // Shares are parsed in hundredths of a percent, so 100 % is 10 000.
        if !self.buyers.is_empty() && shares != 10_000 {
            out.push(issue(
                "buyers",
                "shares_sum_to_100",
                "各买受人的份额合计须为 100%。",
            ));
        }
        out
    }
}

/// An ID number as shown to anyone but its holder and the reviewers who need it:
/// `44190019900101001X` → `4419**********001X`.
pub fn mask_id_number(id: &str) -> String {
    super::identity::mask(id)
}
