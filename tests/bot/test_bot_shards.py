"""Scale-out: two bot clients, each running one of two gateway shards, against one fake Discord
and one shared Milvus index (README "Scaling out")."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

from bot.client import NewsdeskBot, ShardedNewsdeskBot, create_bot
from index.config import Settings
from index.embedding.hashing import HashEmbedder
from index.models import Document
from index.pipeline import Pipeline
from tests.conftest import _fakediscord, milvus_available

pytestmark = pytest.mark.skipif(not milvus_available(), reason="pip install -e '.[milvus]'")

QUESTION = "Who won the national bread prize?"


def guilds_on_both_shards(fake: Any) -> tuple[int, int]:
    """Two guilds, the first routed to shard 0 of 2 and the second to shard 1."""
    found: dict[int, int] = {}
    for i in range(200):
        gid = fake.add_guild(f"Guild {i}")
        found.setdefault(fake.shard_of(gid, 2), gid)
        if len(found) == 2:
            return found[0], found[1]
        fake._last_id += 1 << 22  # the next snowflake a millisecond on: maybe the other shard
    raise AssertionError("could not place guilds on both shards")


def test_create_bot_picks_the_sharded_client(bot_settings: Settings) -> None:
    assert type(create_bot(bot_settings, Pipeline(bot_settings, HashEmbedder()))) is NewsdeskBot
    sharded = copy.deepcopy(bot_settings)
    sharded.discord.shard_count, sharded.discord.shard_ids = 4, [2, 3]
    bot = create_bot(sharded, Pipeline(sharded, HashEmbedder()))
    assert isinstance(bot, ShardedNewsdeskBot)
    assert (bot.shard_count, bot.shard_ids) == (4, [2, 3])


async def test_two_shard_clients_share_one_milvus_index(
    discord_fake: Any, bot_settings: Settings, corpus_dir: Path, tmp_path: Path
) -> None:
    fake = discord_fake
    fake.shard_count = 2
    g0, g1 = guilds_on_both_shards(fake)
    user = fake.add_user("alice")
    channels = {}
    for gid in (g0, g1):
        channels[gid] = fake.add_channel(gid, "general")
        fake.add_member(gid, user)

    shared = copy.deepcopy(bot_settings)
    shared.store.backend = "milvus"
    shared.store.uri = str(tmp_path / "shared-milvus.db")
    writer = Pipeline(shared, HashEmbedder())
    writer.add([str(corpus_dir)])

    bots: list[ShardedNewsdeskBot] = []
    pipes = []
    for shard in (0, 1):
        s = copy.deepcopy(shared)
        s.data_dir = tmp_path / f"process{shard}"  # nothing of the index lives there
        s.discord.shard_count, s.discord.shard_ids = 2, [shard]
        pipes.append(Pipeline(s, HashEmbedder()))
        bot = create_bot(s, pipes[-1])
        assert isinstance(bot, ShardedNewsdeskBot)
        bots.append(bot)

    run_bot = _fakediscord().run_bot
    try:
        async with run_bot(fake, bots[0]), run_bot(fake, bots[1]):
            await asyncio.sleep(0.2)
            shards = [p["shard"] for p in fake.identify_payloads]
            assert sorted(map(tuple, shards)) == [(0, 2), (1, 2)]
            # each client holds only its shard's guild
            assert [g.id for g in bots[0].guilds] == [g0]
            assert [g.id for g in bots[1].guilds] == [g1]
            # only the process with shard 0 registered the slash commands
            assert bots[0].synced == ["global"] and bots[1].synced == []

            for gid in (g0, g1):
                await fake.send_message(channels[gid], user, QUESTION, mention_bot=True)
            for gid in (g0, g1):
                await fake.wait_for(lambda gid=gid: fake.messages[channels[gid]], timeout=10)
                (reply,) = fake.messages[channels[gid]]  # answered once, by its shard
                assert "Lyon" in reply["embeds"][0]["description"]

            # a write by another process is answered by both shards on their next question
            news = Document(
                "/news/tram.txt", "Tram line opens", "The new tram line to the harbour opened."
            )
            await asyncio.to_thread(writer.add_documents, [news])
            for gid in (g0, g1):
                await fake.send_message(
                    channels[gid], user, "Where does the new tram line go?", mention_bot=True
                )
            for gid in (g0, g1):
                await fake.wait_for(lambda gid=gid: len(fake.messages[channels[gid]]) == 2, 10)
                assert "harbour" in fake.messages[channels[gid]][1]["embeds"][0]["description"]
        assert fake.errors == []
    finally:
        for p in [writer, *pipes]:
            p.close()
