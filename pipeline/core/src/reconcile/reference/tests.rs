//! Contract numbers, installment hints and company names as people write them.
use super::*;

fn finder() -> ContractRefFinder {
    ContractRefFinder::new(
        r"(?i)HT[\s\-_/]*([0-9]{4})[\s\-_/]*([0-9]{6})",
        "HT-${1}-${2}",
    )
    .unwrap()
}

#[test]
fn finds_contract_numbers_in_any_common_spelling() {
    let f = finder();
    for text in [
        "HT-2026-000123",
        "ht2026000123",
        "合同号HT2026000123第1期",
        "货款 合同号:ht-2026-000123 第2期款",
        "HT 2026 000123 首付款",
    ] {
        assert_eq!(f.contract_numbers(text), ["HT-2026-000123"], "{text}");
    }
    assert!(f.contract_numbers("HT-2026-0001234").is_empty());
    assert_eq!(
        f.contract_numbers("货款ＨＴ－２０２６－０００１２３"),
        ["HT-2026-000123"],
        "full width, as Chinese input methods type it"
    );
    assert!(f.contract_numbers("货款").is_empty());
}

#[test]
fn reads_installment_hints() {
    let f = finder();
    assert_eq!(f.installments("HT-2026-000123 第2期"), [2]);
    assert_eq!(f.installments("第1-2期款"), [1, 2]);
    assert_eq!(f.installments("第三期"), [3]);
    assert_eq!(
        f.installments("合同HT2026000001 第 2 期 和 第一、二期"),
        [1, 2]
    );
    assert_eq!(f.installments("第十二期尾款"), [12]);
    assert!(
        f.installments("第二批货").is_empty(),
        "a 第 without 期 is no installment"
    );
    assert_eq!(f.installments("installment 3"), [3]);
    assert_eq!(f.installments("Payment ht-2025-000123 Inst. 2"), [2]);
    assert_eq!(f.installments("phase #1-2"), [1, 2]);
    assert_eq!(f.installments("stage 3 and 4"), [3, 4]);
    assert_eq!(
        f.installments("Payment HT-2026-000154 installments 3-4"),
        [3, 4]
    );
    assert_eq!(
        f.installments("HT2026000351inst. 2"),
        [2],
        "a wrapped line joined"
    );
    assert!(f.installments("reinstall 5 units").is_empty());
    // Every common way of writing an installment.
    for (text, seq) in [
        ("HT-2026-000100 第2期", 2),
        ("合同号HT-2026-000100第二期款", 2),
        ("HT-2026-000100 2/3期", 2),
        ("HT-2026-000100/2", 2),
        ("HT-2026-000100-2期", 2),
        ("HT-2026-000100 installment 2", 2),
        ("HT2026000100 inst. 2", 2),
        ("HT-2026-000100 2nd installment", 2),
        ("second instalment HT-2026-000100", 2),
        ("ＨＴ－２０２６－０００１００／２", 2),
    ] {
        assert_eq!(
            f.read(text),
            (vec!["HT-2026-000100".to_string()], vec![seq]),
            "{text}"
        );
    }
    assert!(
        f.installments("分3期付款 HT-2026-000100").is_empty(),
        "a count, not a hint"
    );
    assert!(f.installments("HT-2026-000100/2026").is_empty());
    assert!(
        f.installments("invoice 2/3 HT-2026-000100 2nd shipment")
            .is_empty()
    );
    assert!(f.installments("首付款").is_empty());
}

#[test]
fn normalizes_company_names() {
    assert_eq!(
        normalize_company_name("成都某医院（北京分公司）"),
        normalize_company_name("成都某医院")
    );
    assert_eq!(
        normalize_company_name("上海联影医疗科技股份有限公司"),
        "上海联影医疗科技"
    );
    assert_eq!(
        normalize_company_name("ＡＢＣ　Trading Co., Ltd."),
        "abctrading"
    );
    let company = normalize_company_name("重庆瑞康医疗器械有限公司");
    for variant in [
        "重庆瑞康医疗器械有限公司重庆分公司",
        "重庆瑞康医疗器械有限公司（财务科）",
        "重庆瑞康医疗器械有限公司财务部",
        "重庆瑞康医疗器械有限公司(北京办事处)",
    ] {
        assert_eq!(normalize_company_name(variant), company, "{variant}");
    }
}
