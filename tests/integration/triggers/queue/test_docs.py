"""Every workflow in docs/triggers-queue.md has valid queue triggers, one example per broker."""

import re

import yaml

from conv3n.triggers.queue import validate
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "triggers-queue.md"
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_documented_queue_triggers_are_valid_and_cover_every_broker():
    brokers = set()
    for block in FENCE.findall(PAGE.read_text(encoding="utf-8")):
        workflow = yaml.safe_load(block)
        for index, trigger in enumerate(workflow["triggers"]):
            assert validate(trigger, at=("triggers", index)) == [], block
            brokers.add(trigger["broker"])
    assert brokers == {"redis", "rabbitmq", "mqtt", "nats", "postgres"}
