-- Every Message-ID a post's copies carried or its author gave it, to thread
-- replies: a reply names one of them (its client's), and the list maps it
-- to the IDs every subscriber received. `role`: 'inner' (the Message-ID
-- inside the encryption, the same in every copy), 'outer' (outside, the
-- same in every copy of the post), 'author' (the IDs the author's own
-- message carried). An ID belongs to the first post that carried it.
-- Message-IDs are metadata, like the addresses of the log; no content.
CREATE TABLE message_ids (
    message_id TEXT PRIMARY KEY NOT NULL,
    post_id    INTEGER NOT NULL REFERENCES posts(id),
    role       TEXT NOT NULL CHECK (role IN ('inner', 'outer', 'author'))
) STRICT;
CREATE INDEX message_ids_post ON message_ids(post_id);
