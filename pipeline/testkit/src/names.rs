//! A seeded random source and the vocabulary of a Chinese B2B medical-device company:
//! customers, unrelated payers, sales reps, regions.

/// SplitMix64: tiny, fast and stable across versions, so a seed means the same dataset forever.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as i64 - 1) as usize]
    }
}

pub const CITIES: &[&str] = &[
    "成都", "上海", "北京", "广州", "深圳", "杭州", "武汉", "西安", "南京", "重庆", "天津", "苏州",
    "长沙", "郑州", "济南", "青岛", "沈阳", "昆明", "福州", "合肥",
];
pub const CORES: &[&str] = &[
    "华康", "瑞达", "恒信", "博远", "康泰", "明德", "安和", "仁济", "中联", "天成", "金桥", "新元",
    "宏图", "嘉禾", "同心", "永安", "启航", "卓越", "惠民", "德润", "瑞康", "弘毅", "泰和", "益生",
];
pub const KINDS: &[(&str, &str)] = &[
    ("医院", ""),
    ("医疗器械", "有限公司"),
    ("生物科技", "股份有限公司"),
    ("医药", "有限责任公司"),
    ("健康管理", "有限公司"),
    ("检测技术", "有限公司"),
    ("妇幼保健院", ""),
    ("康复医疗", "有限公司"),
];
pub const OTHER_CORES: &[&str] = &[
    "顺达", "鸿运", "通达", "恒丰", "鑫源", "隆盛", "万通", "富华", "聚源", "兴业",
];
pub const OTHER_KINDS: &[&str] = &[
    "物流",
    "物业管理",
    "广告传媒",
    "餐饮管理",
    "人力资源",
    "办公设备",
    "建筑装饰",
];
pub const OTHER_MEMOS: &[&str] = &[
    "退款",
    "往来款",
    "保证金退还",
    "押金退回",
    "服务费返还",
    "代收款",
];
pub const REGIONS: &[&str] = &["华东", "华南", "华北", "华中", "西南", "西北", "东北"];
pub const SIGNERS: &[&str] = &[
    "张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴婷",
];
pub const GENERIC_MEMOS: &[&str] = &["货款", "设备款", "付款", "采购款", "转账"];

/// The structured terms of `TERMS`, as people write them (same installments).
pub const FREE_TEXT_TERMS: &[&[&str]] = &[
    &[
        "签约后30日内一次性支付100%",
        "100% within 30 days of signing",
    ],
    &[
        "签约后7日内支付30%，签约后30日内支付剩余70%",
        "30% within 7 days of signing, balance within 30 days of signing",
    ],
    &[
        "签约后7日内支付30%，验收合格后15日内支付剩余70%",
        "30% within 7 days of signing, balance net 15 after acceptance",
    ],
    &[
        "签约后7日内付30%，签约后45天内付60%，质保金10%于验收后一年内支付",
        "30% within 7 days of signing; 60% within 45 days of signing; 10% retention within 1 year after acceptance",
    ],
    &[
        "签约后7日内付20%；签约后20日内付30%；签约后40日内付30%；验收后10日内付清余款",
        "20% within 7 days of signing, 30% within 20 days of signing, 30% within 40 days of signing, balance within 10 days after acceptance",
    ],
    &[
        "合同签订后十日内支付百分之五十，合同签订后四十日内支付其余百分之五十",
        "50% within 10 days of signing, the remaining 50% within 40 days of signing",
    ],
    &[
        "签约后75日内支付25%，签约后50日内支付25%，签约后28日内支付25%，签约后7日内支付25%",
        "25% within 75 days of signing, 25% within 50 days of signing, 25% within 28 days of signing, 25% within 7 days of signing",
    ],
    &[
        "验收合格后5日内支付60%，签约后10日内支付40%",
        "60% within 5 days after acceptance, 40% within 10 days of signing",
    ],
    &[
        "签约后20日内支付设备款50%，签约后20日内支付安装款50%",
        "50% within 20 days of signing, the other 50% within 20 days of signing",
    ],
];
/// Terms no one can turn into installments without guessing.
pub const UNPARSEABLE_TERMS: &[&str] = &[
    "按合同约定付款",
    "款到发货",
    "分期付款，具体另议",
    "货到付款（待定）",
];
