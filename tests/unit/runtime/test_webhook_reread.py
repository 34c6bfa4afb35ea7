"""`RereadOnMiss`: an unknown webhook path re-reads the active workflows, at most once per
interval, one read shared by the misses that arrive while it runs."""

import asyncio

from conv3n.runtime.webhooks import RereadOnMiss


class Reader:
    """A re-read that blocks until released, counting its calls."""

    def __init__(self, fail: bool = False):
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> None:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise ConnectionError("database away")


async def test_concurrent_misses_share_one_reread():
    reader = Reader()
    reread = RereadOnMiss(reader, every_s=60)
    misses = [asyncio.create_task(reread()) for _ in range(50)]
    await asyncio.sleep(0)  # every miss is waiting on the one read now
    reader.release.set()
    assert await asyncio.gather(*misses) == [True] * 50
    assert reader.calls == 1


async def test_a_flood_of_misses_after_a_reread_costs_no_more_reads_until_the_interval():
    reader = Reader()
    reader.release.set()
    reread = RereadOnMiss(reader, every_s=60)
    assert await reread() is True
    assert [await reread() for _ in range(1000)] == [False] * 1000
    assert reader.calls == 1


async def test_a_reread_is_done_again_once_the_interval_passed():
    reader = Reader()
    reader.release.set()
    reread = RereadOnMiss(reader, every_s=0)
    assert [await reread() for _ in range(3)] == [True] * 3
    assert reader.calls == reread.rereads == 3


async def test_a_failed_reread_answers_false_to_every_waiter():
    reader = Reader(fail=True)
    reread = RereadOnMiss(reader, every_s=0)
    misses = [asyncio.create_task(reread()) for _ in range(3)]
    await asyncio.sleep(0)
    reader.release.set()
    assert await asyncio.gather(*misses) == [False] * 3
    assert reread.rereads == 0


async def test_a_cancelled_waiter_does_not_cancel_the_reread_of_the_others():
    reader = Reader()
    reread = RereadOnMiss(reader, every_s=60)
    first, second = asyncio.create_task(reread()), asyncio.create_task(reread())
    await asyncio.sleep(0)
    first.cancel()  # its client went away
    reader.release.set()
    assert await second is True
    assert reread.rereads == 1
