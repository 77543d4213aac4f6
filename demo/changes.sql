-- changes.sql: what happens at the help desk during the demo fortnight.
--
-- followupd never writes the help desk's database, so the demo plays the
-- desk's part itself: before each simulated tick, demo/run.sh applies every
-- section below whose time has come. A section starts with a line
--     -- @ YYYY-MM-DD HH:MM:SS  what happens (printed by the demo)
-- and runs up to the next one. Times are UTC.

-- @ 2026-11-02 11:30:00  Lena solves Kai's late two-factor codes (ticket 7)
UPDATE tickets SET status = 'resolved', resolved_at = '2026-11-02 11:30:00', updated_at = '2026-11-02 11:30:00' WHERE id = 7;

-- @ 2026-11-03 10:05:00  Morgan writes in: the CSV export drops accents (ticket 9)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (9, 5, 3, 'Export to CSV drops accents', 'open', '2026-11-03 10:05:00', NULL, '2026-11-03 10:05:00');

-- @ 2026-11-03 14:20:00  Diego fixes Morgan's export; Sam sorts out Priya's label (tickets 9, 8)
UPDATE tickets SET status = 'resolved', resolved_at = '2026-11-03 14:20:00', updated_at = '2026-11-03 14:20:00' WHERE id IN (8, 9);

-- @ 2026-11-04 12:00:00  Bob's billing address is updated (ticket 10; his email address is not one)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (10, 7, 1, 'Cannot update my billing address', 'resolved', '2026-11-04 08:15:00', '2026-11-04 12:00:00', '2026-11-04 12:00:00');

-- @ 2026-11-05 10:00:00  Sam fixes Amelia's stale dashboard (ticket 11)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (11, 12, 1, 'Dashboard shows yesterday''s numbers', 'resolved', '2026-11-04 16:00:00', '2026-11-05 10:00:00', '2026-11-05 10:00:00');

-- @ 2026-11-06 11:00:00  Pat's expired reset link is sorted (ticket 12)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (12, 8, 2, 'Password reset link expired', 'resolved', '2026-11-06 09:30:00', '2026-11-06 11:00:00', '2026-11-06 11:00:00');

-- @ 2026-11-06 13:45:00  Amelia writes back: the numbers are stale again. Ticket 11 is REOPENED
UPDATE tickets SET status = 'open', resolved_at = NULL, updated_at = '2026-11-06 13:45:00' WHERE id = 11;

-- @ 2026-11-07 08:30:00  Jürgen's delivery size is corrected (ticket 13, stored in ISO form)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (13, 9, 2, 'Größe der Lieferung falsch', 'resolved', '2026-11-06T19:00:00Z', '2026-11-07T08:30:00Z', '2026-11-07T08:30:00Z');

-- @ 2026-11-08 17:00:00  the small shop gets its bulk discount answered (ticket 14; no name on file)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (14, 10, 3, 'Bulk order discount <10 kg> & delivery', 'resolved', '2026-11-08 09:00:00', '2026-11-08 17:00:00', '2026-11-08 17:00:00');

-- @ 2026-11-09 16:20:00  Sam finds the real cause; Amelia's ticket 11 is resolved a second time
UPDATE tickets SET status = 'resolved', resolved_at = '2026-11-09 16:20:00', updated_at = '2026-11-09 16:20:00' WHERE id = 11;

-- @ 2026-11-10 09:10:00  Chen's photo upload crash is fixed (ticket 15)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (15, 11, 3, 'App crashes when uploading photos', 'resolved', '2026-11-09 02:00:00', '2026-11-10 09:10:00', '2026-11-10 09:10:00');

-- @ 2026-11-11 14:00:00  Ana's gift card balance shows up again (ticket 16); ticket 15 is closed
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (16, 1, 1, 'Gift card balance not showing', 'resolved', '2026-11-11 09:00:00', '2026-11-11 14:00:00', '2026-11-11 14:00:00');
UPDATE tickets SET status = 'closed', updated_at = '2026-11-11 14:00:00' WHERE id = 15;

-- @ 2026-11-12 10:00:00  Layla asks to move her delivery slot (ticket 17, waiting on the courier)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (17, 3, 2, 'Can I change my delivery slot?', 'pending', '2026-11-12 10:00:00', NULL, '2026-11-12 10:00:00');

-- @ 2026-11-13 09:30:00  Zoë gets her old orders back (ticket 18)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (18, 2, 1, 'Lost access to my old orders', 'resolved', '2026-11-12 21:00:00', '2026-11-13 09:30:00', '2026-11-13 09:30:00');

-- @ 2026-11-13 11:00:00  Layla writes again: the courier has no slot before Tuesday (ticket 17 updated; Lena's call-back moves)
UPDATE tickets SET updated_at = '2026-11-13 11:00:00' WHERE id = 17;

-- @ 2026-11-14 18:00:00  Kai's kettle lid is replaced (ticket 19; its check-in falls after the demo)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (19, 4, 3, 'Kettle lid does not close', 'resolved', '2026-11-13 23:00:00', '2026-11-14 18:00:00', '2026-11-14 18:00:00');

-- @ 2026-11-15 12:30:00  Morgan opens a new ticket (ticket 20, still open at the end)
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at)
VALUES (20, 5, 3, 'Invoice PDF is blank', 'open', '2026-11-15 12:30:00', NULL, '2026-11-15 12:30:00');

-- @ 2026-11-16 08:00:00  Diego is away: Morgan's ticket 20 goes to Sam (his call-back too)
UPDATE tickets SET agent_id = 1, updated_at = '2026-11-16 08:00:00' WHERE id = 20;
