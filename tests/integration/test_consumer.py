"""common.consumer with a real broker: what an Outcome's tidying up waits for."""

import threading

from common.broker import Publisher
from common.consumer import Consumer
from common.handler import Outcome
from tests.servers import queue_depth


def test_the_tidying_up_comes_after_the_next_message_is_sent_and_the_delivery_acked(stack_env):
    queue = stack_env["VIDEO_QUEUE"] + ".tidy"
    next_queue = stack_env["MP3_QUEUE"] + ".tidy"
    seen = {}
    tidied = threading.Event()

    def tidy():
        seen["next message sent"] = queue_depth(stack_env, next_queue)
        seen["delivery left its queue"] = consumer._work is None
        tidied.set()

    def handler(delivery, _cancel):
        return Outcome.ack((next_queue, {"job_id": "j1"}), then=tidy)

    publisher = Publisher(stack_env["RABBITMQ_URL"], (queue, next_queue))
    consumer = Consumer(url=stack_env["RABBITMQ_URL"], queue=queue, queues=(queue, next_queue), handler=handler)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    try:
        publisher.publish(queue, {"job_id": "j1"})
        thread.start()
        assert tidied.wait(30), "the tidying up never ran"
    finally:
        stop.set()
        thread.join(timeout=30)
        channel = publisher._open_channel()
        for name in (queue, next_queue):
            channel.queue_delete(name)
            channel.queue_delete(name + ".dead")
        publisher.close()

    assert seen == {"next message sent": 1, "delivery left its queue": True}
