//! The 国密 fixture shared by the OFD benchmark and the OFD tests (included by path): an SM2
//! hierarchy, the centre's seal holder and its GB/T 38540 seal, the CRLs a package carries, and
//! a registration certificate's content.

use time::OffsetDateTime;
use virtual_window::ofd::write::{self, CertificateContent};
use virtual_window::pdf::layout::Block;
use virtual_window::pki::gm::{self, GmAuthority, GmHierarchy, GmRevoked};
use virtual_window::pki::ses::{self, SealSpec};

pub struct CentreSeal {
    pub h: GmHierarchy,
    pub holder: GmAuthority,
    pub seal: Vec<u8>,
    /// The centre CA's CRL (listing `revoked`) and the root's.
    pub crls: Vec<Vec<u8>>,
}

/// The centre's 不动产登记专用章 at `now`; the centre CA's CRL lists `revoked`.
pub fn centre_seal(
    now: OffsetDateTime,
    revoked: impl FnOnce(&GmAuthority) -> Vec<GmRevoked>,
) -> CentreSeal {
    let h = GmHierarchy::create(now, "http://127.0.0.1/pki/crl").unwrap();
    let holder = h
        .issue_signer(
            true,
            "东莞市不动产登记中心",
            "不动产登记专用章",
            now,
            2,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
    let next = now + time::Duration::days(1);
    let crls = vec![
        gm::crl(&h.centre_ca, 1, &revoked(&holder), now, next).unwrap(),
        gm::crl(&h.root, 1, &[], now, next).unwrap(),
    ];
    let spec = SealSpec {
        vendor: "VIRTUALWINDOW".into(),
        es_id: "441900000000000001".into(),
        seal_type: 3,
        name: "东莞市不动产登记中心不动产登记专用章".into(),
        signer_certs: vec![holder.cert_der.clone()],
        created: now,
        valid_from: now - time::Duration::minutes(1),
        valid_to: now + time::Duration::days(365),
        picture: write::seal_picture("东莞市不动产登记中心", "不动产登记专用章"),
    };
    let seal = ses::make_seal(&spec, &h.seal_maker).unwrap();
    CentreSeal {
        h,
        holder,
        seal,
        crls,
    }
}

/// A registration certificate as the service lays it out: title, number, statement, the table,
/// the QR code and its caption, authority and date, the seal's place.
pub fn certificate_content() -> CertificateContent {
    let rows = [
        ("证明权利或事项", "预告登记（预购商品房买卖）"),
        ("权利人（申请人）", "张伟、李娜"),
        ("义务人", "东莞市云境置业有限公司"),
        ("坐落", "东莞市松山湖高新区云境花园1栋1单元1801"),
        ("不动产单元号", "441900001001GB00001F00011801"),
        (
            "其他",
            "合同编号 YS-2026-000123；备案号 BA-2026-000045；总价款人民币 2,350,000.00 元；建筑面积 98.76 平方米",
        ),
        ("附记", "受理号 SL-2026-000321"),
    ];
    CertificateContent {
        title: "不动产登记证明".into(),
        authority: "东莞市不动产登记中心".into(),
        blocks: vec![
            Block::Title("不动产登记证明".into()),
            Block::Paragraph {
                text: "粤(2026)东莞市不动产证明第0001234号".into(),
                indent: false,
            },
            Block::Paragraph {
                text: "根据《中华人民共和国民法典》等法律法规，为保护申请人合法权益，对下列事项予以登记，特发此证明。".into(),
                indent: true,
            },
            Block::Table {
                widths: vec![0.26, 0.74],
                rows: rows.iter().map(|(a, b)| vec![a.to_string(), b.to_string()]).collect(),
            },
            Block::QrCode {
                data: "https://window.example.cn/c/20260001234".into(),
                size: 72.0,
                caption: "本证明为电子证照，与纸质证明具有同等效力。扫描二维码或访问 https://window.example.cn/c/20260001234 查询本证明的当前状态（有效、注销或被替代）。".into(),
            },
            Block::Paragraph {
                text: "登记机构：东莞市不动产登记中心　　登簿日期：2026-12-04".into(),
                indent: false,
            },
            Block::SignatureField {
                field: "centre-seal".into(),
                label: "不动产登记中心（印章）：".into(),
                width: 130.0,
                height: 130.0,
            },
        ],
        data: rows.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
    }
}
