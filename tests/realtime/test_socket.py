"""The ``/sync-progress`` namespace seen by a python-socketio client over a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from menusync.realtime.events import EventType
from tests.realtime.conftest import LiveServer, ProgressClient, relayed, write_events
from tests.support import TEST_SECRET, make_token

Connect = Callable[..., Any]


# ---- connecting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param(None, "Missing token", id="no-token"),
        pytest.param("not-a-jwt", "Invalid token", id="garbage"),
        pytest.param(make_token(secret=TEST_SECRET[::-1]), "Invalid token", id="wrong-signature"),
        pytest.param(make_token(ttl=-60), "Token has expired", id="expired"),
        pytest.param(make_token(role="janitor"), "Unknown role", id="unknown-role"),
    ],
)
async def test_connection_without_a_valid_token_is_refused_with_a_message(
    live: LiveServer, token: str | None, message: str
) -> None:
    client = ProgressClient(live.url)

    with pytest.raises(Exception, match="failed to connect"):
        await client.connect(token)

    assert message in client.refusal["message"]
    assert live.realtime.hub.connections == 0


@pytest.mark.parametrize("prefix", ["Bearer ", ""])
async def test_connected_greets_with_user_and_company(live: LiveServer, prefix: str) -> None:
    client = ProgressClient(live.url)

    await client.connect(make_token("acme", user="u-42"), prefix=prefix)
    await client.wait_for(lambda c: bool(c.events("connected")), "connected")

    (greeting,) = client.events("connected")
    assert greeting.payload["type"] == "connected"
    assert greeting.payload["data"] == {"userId": "u-42", "companyId": "acme"}
    assert greeting.payload["timestamp"]
    await client.disconnect()


async def test_token_expiry_ends_the_connection(live: LiveServer) -> None:
    client = ProgressClient(live.url)
    await client.connect(make_token("acme", ttl=2))

    await client.wait_for(lambda c: not c.sio.connected, "the server to disconnect")

    assert [r.payload["data"] for r in client.events("error")] == [{"message": "Token expired"}]


# ---- delivery and isolation -----------------------------------------------------------------


async def test_each_company_receives_only_its_own_events(
    live: LiveServer, clients: Connect
) -> None:
    acme, globex = await clients("acme"), await clients("globex")

    acme_ids = await write_events(live.resources, "acme", 3, sync_id=uuid.uuid4())
    globex_ids = await write_events(live.resources, "globex", 1, sync_id=uuid.uuid4())
    await acme.wait_ids(acme_ids)
    await globex.wait_ids(globex_ids)

    assert acme.ids() == acme_ids
    assert globex.ids() == globex_ids


async def test_payload_is_type_event_id_data_timestamp(live: LiveServer, clients: Connect) -> None:
    client = await clients("acme")
    sync_id = uuid.uuid4()

    (event_id,) = await write_events(live.resources, "acme", sync_id=sync_id)
    await client.wait_ids([event_id])

    (received,) = client.events(EventType.SYNC_PROGRESS.value)
    assert set(received.payload) == {"type", "eventId", "data", "timestamp"}
    assert received.payload["type"] == "sync-progress"
    assert received.payload["eventId"] == event_id
    assert received.payload["data"]["syncId"] == str(sync_id)


async def test_socket_in_company_sync_and_batch_rooms_gets_each_event_once(
    live: LiveServer, clients: Connect
) -> None:
    client = await clients("acme")
    sync_id, batch_id = uuid.uuid4(), uuid.uuid4()
    await write_events(
        live.resources, "acme", batch_id=batch_id, event_type=EventType.BATCH_STARTED
    )
    await write_events(live.resources, "acme", sync_id=sync_id, batch_id=batch_id)
    assert (await client.call("subscribe-sync", {"syncId": str(sync_id)}))["ok"]
    assert (await client.call("subscribe-multi-sync", {"multiSyncId": str(batch_id)}))["ok"]

    ids = await write_events(live.resources, "acme", 5, sync_id=sync_id, batch_id=batch_id)
    marker = await write_events(live.resources, "acme", sync_id=uuid.uuid4())
    await client.wait_ids(ids + marker)

    assert client.ids()[-6:] == ids + marker
    assert len(client.ids()) == len(set(client.ids()))


async def test_another_companys_sync_is_refused_exactly_like_a_missing_one(
    live: LiveServer, clients: Connect
) -> None:
    theirs, missing = uuid.uuid4(), uuid.uuid4()
    await write_events(live.resources, "acme", sync_id=theirs, event_type=EventType.SYNC_STARTED)
    intruder = await clients("globex")

    other = await intruder.call("subscribe-sync", {"syncId": str(theirs), "sinceEventId": 0})
    absent = await intruder.call("subscribe-sync", {"syncId": str(missing), "sinceEventId": 0})

    assert other["ok"] is False
    assert other["error"]["code"] == absent["error"]["code"] == "sync_not_found"
    assert other["error"]["message"].replace(str(theirs), "X") == absent["error"][
        "message"
    ].replace(str(missing), "X")
    later = await write_events(live.resources, "acme", sync_id=theirs)
    mine = await write_events(live.resources, "globex", sync_id=uuid.uuid4())
    await intruder.wait_ids(mine)
    assert not set(later) & set(intruder.ids())


async def test_another_companys_batch_is_refused_like_a_missing_one(
    live: LiveServer, clients: Connect
) -> None:
    batch_id = uuid.uuid4()
    await write_events(
        live.resources, "acme", batch_id=batch_id, event_type=EventType.BATCH_STARTED
    )
    owner, intruder = await clients("acme"), await clients("globex")

    allowed = await owner.call("subscribe-multi-sync", {"multiSyncId": str(batch_id)})
    refused = await intruder.call("subscribe-multi-sync", {"multiSyncId": str(batch_id)})

    assert allowed == {
        "ok": True,
        "status": "pending",
        "multiSyncId": str(batch_id),
        "replayed": 0,
    }
    assert refused["error"]["code"] == "batch_not_found"


async def test_subscribe_answers_the_syncs_current_status(
    live: LiveServer, clients: Connect
) -> None:
    sync_id = uuid.uuid4()
    await write_events(live.resources, "acme", sync_id=sync_id, event_type=EventType.SYNC_STARTED)
    await write_events(
        live.resources, "acme", sync_id=sync_id, event_type=EventType.SYNC_RETRY_SCHEDULED
    )
    client = await clients("acme")

    ack = await client.call("subscribe-sync", {"syncId": str(sync_id)})
    left = await client.call("unsubscribe-sync", {"syncId": str(sync_id)})

    assert ack == {"ok": True, "status": "scheduled_retry", "syncId": str(sync_id), "replayed": 0}
    assert left == {"ok": True}


@pytest.mark.parametrize(
    "data",
    [None, {}, {"syncId": "not-a-uuid"}, {"syncId": str(uuid.uuid4()), "sinceEventId": -1}],
)
async def test_malformed_subscription_is_answered_with_validation_failed(
    clients: Connect, data: Any
) -> None:
    client = await clients("acme")

    ack = await client.call("subscribe-sync", data)

    assert ack["ok"] is False
    assert ack["error"]["code"] == "validation_failed"


# ---- replay -------------------------------------------------------------------------------------


async def test_reconnect_with_since_event_id_replays_the_gap_without_duplicates(
    live: LiveServer, clients: Connect
) -> None:
    sync_id = uuid.uuid4()
    first = await clients("acme")
    seen = await write_events(live.resources, "acme", 3, sync_id=sync_id)
    await first.wait_ids(seen)
    await first.disconnect()
    missed = await write_events(live.resources, "acme", 4, sync_id=sync_id)
    other_sync = await write_events(live.resources, "acme", 2, sync_id=uuid.uuid4())
    await relayed(live, other_sync[-1])

    # Events keep being written while the client reconnects and subscribes.
    writer = asyncio.create_task(
        write_events(live.resources, "acme", 30, sync_id=sync_id, per_transaction=1)
    )
    second = await clients("acme")
    ack = await second.call("subscribe-sync", {"syncId": str(sync_id), "sinceEventId": seen[-1]})
    during = await writer
    await second.wait_ids(missed + during)

    # Live events flow from the moment of connecting, so they may arrive before the replay.
    sync_ids = [i for i in second.ids() if i not in other_sync]
    assert ack["ok"] is True
    assert ack["replayed"] >= len(missed)
    assert sorted(sync_ids) == missed + during
    assert len(sync_ids) == len(set(sync_ids))
    assert not set(seen) & set(second.ids())


async def test_subscribing_to_a_batch_and_its_sync_replays_shared_events_once(
    live: LiveServer, clients: Connect
) -> None:
    sync_id, batch_id = uuid.uuid4(), uuid.uuid4()
    history = await write_events(
        live.resources, "acme", batch_id=batch_id, event_type=EventType.BATCH_STARTED
    )
    history += await write_events(live.resources, "acme", 3, sync_id=sync_id, batch_id=batch_id)
    await relayed(live, history[-1])
    client = await clients("acme")

    by_batch = await client.call(
        "subscribe-multi-sync", {"multiSyncId": str(batch_id), "sinceEventId": 0}
    )
    by_sync = await client.call("subscribe-sync", {"syncId": str(sync_id), "sinceEventId": 0})

    assert (by_batch["replayed"], by_sync["replayed"]) == (4, 0)
    assert client.ids() == history


# ---- stats ----------------------------------------------------------------------------------


async def test_connection_stats_count_only_the_callers_company(
    live: LiveServer, clients: Connect
) -> None:
    sync_id = uuid.uuid4()
    await write_events(live.resources, "acme", sync_id=sync_id)
    owner = await clients("acme")
    reader = await clients("acme", role="call_center")
    await clients("globex")
    await reader.call("subscribe-sync", {"syncId": str(sync_id)})

    stats = await owner.call("get-connection-stats")
    denied = await reader.call("get-connection-stats")

    assert stats == {"ok": True, "connectedClients": 2, "companies": 1, "rooms": 2}
    assert denied["ok"] is False
    assert denied["error"]["code"] == "forbidden"
