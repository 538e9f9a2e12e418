//! The Chinese e-signature platforms and Acrobat Sign map onto the same signature event.

use reconlight_formats::model::SignatureStatus;
use reconlight_formats::{adobe_sign, esign_cn, fadada};

#[test]
fn esign_cn_flow_complete() {
    let body = r#"{"action":"SIGN_FLOW_COMPLETE","timestamp":1790000000000,"signFlowId":"f-123","customBizNum":"HT-2026-000123","signFlowTitle":"设备采购合同","signFlowStatus":"2","statusDescription":"完成","signFlowFinishTime":1790000000000,"contractAmount":"480000.00"}"#;
    let e = esign_cn::decode(body, &Default::default()).unwrap();
    assert_eq!(e.status, SignatureStatus::Completed);
    assert!(e.ca_certified);
    assert_eq!(e.contract_no.as_deref(), Some("HT-2026-000123"));
    assert_eq!(e.amount.unwrap().amount.to_string(), "480000.00");
    assert_eq!(e.occurred_at.timestamp_millis(), 1790000000000);
    let one = r#"{"action":"SIGN_MISSON_COMPLETE","timestamp":1790000000000,"signFlowId":"f-123","customBizNum":"HT-2026-000123","operator":{"psnId":"p1","psnAccount":{"accountName":"张伟"}}}"#;
    let e = esign_cn::decode(one, &Default::default()).unwrap();
    assert_eq!(
        (e.status, e.ca_certified, e.signer.as_deref()),
        (SignatureStatus::RecipientSigned, false, Some("张伟"))
    );
    let revoked = body.replace("\"signFlowStatus\":\"2\"", "\"signFlowStatus\":\"3\"");
    assert_eq!(
        esign_cn::decode(&revoked, &Default::default())
            .unwrap()
            .status,
        SignatureStatus::Voided
    );
    assert_eq!(
        esign_cn::decode("{}", &Default::default())
            .unwrap_err()
            .to_string(),
        "missing `action`"
    );
}

#[test]
fn fadada_task_finished() {
    let line = r#"{"event":"sign-task-finished","bizContent":"{\"signTaskId\":\"T-9\",\"signTaskStatus\":\"task_finished\",\"transReferenceId\":\"HT-2026-000124\",\"eventTime\":\"1790000000000\"}"}"#;
    let e = fadada::decode(line, &Default::default()).unwrap();
    assert_eq!(
        (e.status, e.ca_certified),
        (SignatureStatus::Completed, true)
    );
    assert_eq!(e.contract_no.as_deref(), Some("HT-2026-000124"));
    assert_eq!(e.event_id, "fadada:T-9:sign-task-finished:-");
    let signed = fadada::decode_parts(
        "sign-task-signed",
        r#"{"signTaskId":"T-9","actorId":"a1","eventTime":1790000000000}"#,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(signed.status, SignatureStatus::RecipientSigned);
    assert!(
        fadada::decode(r#"{"bizContent":{}}"#, &Default::default())
            .unwrap_err()
            .to_string()
            .contains("X-FASC-Event")
    );
}

#[test]
fn adobe_sign_workflow_completed() {
    let body = r#"{"webhookId":"w1","webhookNotificationId":"n1","event":"AGREEMENT_WORKFLOW_COMPLETED","eventDate":"2026-10-01T08:00:00Z","participantUserEmail":"buyer@example.cn","agreement":{"id":"CBJCHBCAABAA","name":"设备采购合同 HT-2026-000125","status":"SIGNED","externalId":{"id":"HT-2026-000125"}}}"#;
    let e = adobe_sign::decode(body, &Default::default()).unwrap();
    assert_eq!(e.status, SignatureStatus::Completed);
    assert!(
        !e.ca_certified,
        "an e-signature without a digital ID is customer-confirmed only"
    );
    assert_eq!(e.contract_no.as_deref(), Some("HT-2026-000125"));
    let options = adobe_sign::AdobeSignOptions {
        ca_certified: true,
        ..Default::default()
    };
    assert!(adobe_sign::decode(body, &options).unwrap().ca_certified);
}
