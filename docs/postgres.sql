-- The table a postgres integration with `table: messages` inserts into: what
-- `wsgate migrate -c wsgate.yaml` (and `wsgate serve`, when the table is
-- missing) runs, in one transaction. For another table, replace "messages"
-- in the three names; see docs/postgres.md for what each column holds.
--
-- id           the row's id, sent back in the acknowledgement frame
-- request_id   requestContext.requestId, unique: an event is stored once
-- event        payload: event — the AWS event JSON;
--              payload: body — the client's message when it is JSON
-- body         payload: body — the message's bytes when it is not JSON
--              (text, binary, or JSON holding \u0000 or a surrogate escape)
-- received_at  requestContext.requestTimeEpoch, when the gateway received it

CREATE TABLE IF NOT EXISTS "messages" (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id    text NOT NULL UNIQUE,
    connection_id text NOT NULL,
    route_key     text NOT NULL,
    event_type    text NOT NULL,
    principal_id  text,
    authorizer    jsonb,
    event         jsonb,
    body          bytea,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "messages_connection_id_received_at_idx" ON "messages" (connection_id, received_at);
