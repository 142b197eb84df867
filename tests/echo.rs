//! The echo responder (examples/echo.rs), the floor that `loadgen --compare-echo` measures packd
//! against: it must answer the way packd does (the brief's Response Topic, its Correlation Data,
//! QoS 1, JSON), or the floor would not be the same path.

use crate::fixtures::{correlation_of, V5Client, PREFIX, REPLY_DEADLINE};
use crate::support::{unique_id, Broker};

use rumqttc::v5::mqttbytes::QoS;

#[allow(dead_code)] // the example's `main` and `Arguments`
#[path = "../examples/echo.rs"]
mod responder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_responder_answers_each_brief_with_its_correlation_data() {
    let broker = Broker::start();
    let device = unique_id("echo");
    let url = broker.url();
    let starting = device.clone();
    // `start` blocks until the broker has granted the subscription.
    // Padded as `loadgen --echo-reply-bytes 5200` pads it: still a JSON reply, of that size.
    let reply = responder::reply_of_size(Some(5200));
    assert_eq!(reply.len(), 5200);
    let echo =
        tokio::task::spawn_blocking(move || responder::start(&url, PREFIX, &starting, reply))
            .await
            .expect("start task")
            .expect("echo responder");
    let mut client = V5Client::connect(&broker).await;
    let topic = packd_wire::Topics::new(PREFIX, &device, &[]).device_briefs;
    // Without a Response Topic there is no way back: dropped, as packd drops it.
    client.send_plain(&topic, "no way back").await;
    // Never read: an unparsable brief is answered like any other.
    client.send(&topic, "not even JSON", "first").await;
    client.send(&topic, r#"{"product":"tea"}"#, "second").await;

    let reply_topic = client.reply_topic.clone();
    for expected in ["first", "second"] {
        let publish = client
            .next_on(&reply_topic, REPLY_DEADLINE)
            .await
            .expect("a reply on the Response Topic");
        assert_eq!(correlation_of(&publish), Some(expected.as_bytes()));
        assert_eq!(publish.qos, QoS::AtLeastOnce);
        let properties = publish.properties.as_ref().expect("properties");
        assert_eq!(properties.content_type.as_deref(), Some("application/json"));
        assert_eq!(publish.payload.len(), 5200);
        let reply: serde_json::Value = serde_json::from_slice(&publish.payload).expect("JSON");
        assert_eq!(reply["status"], "ok");
    }
    let counts = echo.stop().expect("echo responder stops cleanly");
    assert_eq!((counts.answered, counts.dropped), (2, 1));
}

#[test]
fn an_unpadded_or_too_small_size_keeps_the_fixed_reply() {
    assert_eq!(&responder::reply_of_size(None)[..], responder::REPLY);
    assert_eq!(&responder::reply_of_size(Some(10))[..], responder::REPLY);
    let padded = responder::reply_of_size(Some(responder::REPLY.len() + 10));
    assert_eq!(padded.len(), responder::REPLY.len() + 10);
    let reply: serde_json::Value = serde_json::from_slice(&padded).expect("JSON");
    assert_eq!(reply["pad"], "x");
}
