-- seed.sql: the reference help-desk schema and the demo desk as it stands on
-- the morning of Monday 2026-11-02. demo/changes.sql then plays the
-- fortnight (tickets opened, resolved, reopened) one moment at a time.
--
-- Times are UTC text as SQLite writes them ('YYYY-MM-DD HH:MM:SS'); a few
-- rows use the ISO form ('2026-10-31T16:40:00Z') because desks write both.
-- followupd only ever reads this database.

PRAGMA foreign_keys = ON;

CREATE TABLE customers (
	id		INTEGER PRIMARY KEY,
	email		TEXT,
	name		TEXT,
	first_name	TEXT,
	locale		TEXT,
	timezone	TEXT,
	birthday	TEXT,
	customer_since	TEXT
);

CREATE TABLE agents (
	id		INTEGER PRIMARY KEY,
	email		TEXT,
	name		TEXT,
	timezone	TEXT
);

CREATE TABLE tickets (
	id		INTEGER PRIMARY KEY,
	customer_id	INTEGER REFERENCES customers,
	agent_id	INTEGER REFERENCES agents,
	subject		TEXT,
	status		TEXT CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
	created_at	TEXT,
	resolved_at	TEXT,
	updated_at	TEXT
);

CREATE TABLE purchases (
	id		INTEGER PRIMARY KEY,
	customer_id	INTEGER REFERENCES customers,
	item		TEXT,
	amount_cents	INTEGER,
	currency	TEXT,
	purchased_at	TEXT
);

CREATE INDEX tickets_resolved_at ON tickets(resolved_at);
CREATE INDEX tickets_customer ON tickets(customer_id);
CREATE INDEX purchases_customer ON purchases(customer_id, purchased_at);

-- Customers: the awkward ones are on purpose.
INSERT INTO customers (id, email, name, first_name, locale, timezone, birthday, customer_since) VALUES
 (1,  'ana.garcia@example.com',   'Ana García',                'Ana',    'es-ES', 'Europe/Madrid',    '1988-03-14', '2019-05-02 10:00:00'),
 (2,  'zoe.lefevre@example.org',  'Zoë Lefèvre',               'Zoë',    'fr-FR', 'Europe/Paris',     '1992-11-10', '2023-01-15 08:30:00'),
 (3,  'layla.haddad@example.net', 'ليلى حداد',                 'ليلى',   'ar-LB', 'Asia/Beirut',      NULL,         '2021-07-09 12:00:00'),
 (4,  'kai@example.com',          'Kai 🌊 Nakamura',           'Kai',    'ja-JP', 'Asia/Tokyo',       '1995-06-01', '2024-02-29 00:00:00'),
 -- no first name: the greeting falls back to the first word of the name
 (5,  'morgan.lee@example.com',   'Morgan Lee',                NULL,     'en-US', 'America/Chicago',  NULL,         '2025-09-01 16:45:00'),
 -- no address at all: the check-in is skipped with reason no-address
 (6,  NULL,                       'Priya Raman',               'Priya',  'en-IN', 'Asia/Kolkata',     NULL,         '2022-03-03 05:00:00'),
 -- not an address: skipped with reason bad-address
 (7,  'bob at example',           'Bob Stone',                 'Bob',    'en-US', 'America/New_York', NULL,         '2020-10-10 10:10:10'),
 -- a comma and quotes in the display name
 (8,  'pat.obrien@example.org',   'Patrick "Pat" O''Brien, Jr.', 'Pat',  'en-IE', 'Europe/Dublin',    '1979-02-02', '2018-04-01 09:00:00'),
 (9,  'juergen@example.net',      'Jürgen Groß',               'Jürgen', 'de-DE', 'Europe/Berlin',    NULL,         '2016-12-24 11:00:00'),
 -- neither name nor first name: "Hi there,"
 (10, 'orders@smallshop.example', NULL,                        NULL,     NULL,    NULL,               NULL,         '2026-08-18 14:00:00'),
 (11, 'chen.wei@example.com',     '陈伟',                      '伟',     'zh-CN', 'Asia/Shanghai',    NULL,         '2024-11-11 11:11:11'),
 (12, 'amelia.hart@example.org',  'Amelia Hart',               'Amelia', 'en-GB', 'Europe/London',    '1990-09-09', '2017-06-30 13:00:00');

INSERT INTO agents (id, email, name, timezone) VALUES
 (1, 'sam@acme.example',   'Sam Okafor',    'Europe/London'),
 (2, 'lena@acme.example',  'Lena Fischer',  'Europe/Berlin'),
 (3, 'diego@acme.example', 'Diego Álvarez', 'America/Mexico_City');

-- Old history: resolved long ago, outside any rule's lookback.
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at) VALUES
 (1, 1, 1, 'Cannot log in after password reset',  'closed', '2025-03-10 08:02:00', '2025-03-10 15:30:00', '2025-03-12 09:00:00'),
 (2, 9, 2, 'Invoice shows the wrong VAT number',  'closed', '2026-06-03 10:00:00', '2026-06-04 11:15:00', '2026-06-06 08:00:00'),
 (3, 4, 3, 'Where is my order?',                  'closed', '2026-09-21 23:40:00', '2026-09-22 07:05:00', '2026-09-24 07:05:00');

-- Resolved in the last days of October: their check-ins fall due early in
-- the fortnight. Ticket 4 has since been closed (closed counts as solved).
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at) VALUES
 (4, 1, 1, 'Order #1042 arrived with a cracked lid',  'closed',   '2026-10-29 17:20:00',  '2026-10-30 10:12:00',  '2026-11-01 10:12:00'),
 (5, 2, 2, 'Café grinder makes a clicking noise',     'resolved', '2026-10-28T09:00:00Z', '2026-10-31T16:40:00Z', '2026-10-31T16:40:00Z'),
 (6, 3, 3, 'Refund for a duplicate charge',           'resolved', '2026-10-31 19:45:00',  '2026-11-01 08:05:00',  '2026-11-01 08:05:00');

-- Still being worked on when the fortnight starts.
INSERT INTO tickets (id, customer_id, agent_id, subject, status, created_at, resolved_at, updated_at) VALUES
 (7, 4, 2, 'Two-factor codes arrive late',  'open',    '2026-11-01 22:10:00', NULL, '2026-11-01 22:10:00'),
 (8, 6, 1, 'Shipping label printed twice',  'pending', '2026-11-01 09:30:00', NULL, '2026-11-01 12:00:00');

-- Purchases: the history.* variables (count, the three most recent).
INSERT INTO purchases (id, customer_id, item, amount_cents, currency, purchased_at) VALUES
 (1,  1,  'Ceramic pour-over set',      3450, 'EUR', '2025-02-27 18:00:00'),
 (2,  1,  'Filter papers, 200',          650, 'EUR', '2026-05-14 09:12:00'),
 (3,  1,  'Stoneware storage jar',      2400, 'EUR', '2026-10-27 20:41:00'),
 (4,  1,  'Gift card',                  5000, 'EUR', '2026-10-28 08:00:00'),
 (5,  2,  'Hand grinder',               8900, 'EUR', '2026-10-20T11:30:00Z'),
 (6,  3,  'Espresso cups, set of 4',    2800, 'USD', '2026-10-30 16:00:00'),
 (7,  4,  'Travel kettle',              4980, 'USD', '2026-09-20 03:00:00'),
 (8,  5,  'Cold brew bottle',           1999, 'USD', '2026-10-02 21:15:00'),
 (9,  8,  'Barista apron',              3000, 'EUR', '2024-12-01 12:00:00'),
 (10, 8,  'Milk jug',                   1250, 'EUR', '2026-07-07 07:07:00'),
 (11, 9,  'Scale with timer',           4599, 'EUR', '2026-06-01 10:00:00'),
 (12, 10, 'Wholesale beans, 10 kg',    21000, 'GBP', '2026-08-18 14:05:00'),
 (13, 11, 'Gooseneck kettle',           5900, 'USD', '2026-11-01 02:00:00'),
 (14, 12, 'Subscription: monthly beans', 1800, 'GBP', '2026-10-01 06:00:00');
