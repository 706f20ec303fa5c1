-- The seeds' users, numbered as sql/demo/seed.sql's header says, from the seed's own seed_opt
-- temp table (users, orphans, ambiguous, users_without_default, shared_pairs, collisions): a
-- row per user, its number n, id, kind, default workspace and pairing: 'same' for the first
-- user of a shared pair and the second user of a colliding pair (its tenant-scoped names are
-- its partner's: the seed gives it offset 0), 'apart' for the second user of another shared
-- pair (names after its partner's), NULL for a user in no pair. A seed selects from it as a
-- subquery (included on lines of its own) and adds columns of its own.
-- (Data Hub's seed, and the projects app's in tests/apps/projects/seed.sql.)
SELECT n,
       'usr_' || lpad(n::text, 8, '0') AS id,
       CASE WHEN n <= o.users THEN 'regular'
            WHEN n <= o.users + o.orphans THEN 'orphan'
            ELSE 'ambiguous' END AS kind,
       CASE
         WHEN n > o.users THEN NULL                                        -- orphan, ambiguous
         WHEN n > o.users - o.users_without_default THEN NULL              -- OWNER rule applies
         WHEN n <= 2 * o.shared_pairs AND n % 2 = 0 THEN 'ws_' || (n - 1)  -- shares its partner's
         ELSE 'ws_' || n
       END AS default_ws,
       CASE
         WHEN n > 2 * o.shared_pairs THEN NULL
         WHEN n % 2 = 0 AND n / 2 > o.collisions THEN 'apart'
         ELSE 'same'
       END AS pairing
FROM seed_opt o, generate_series(1, o.users + o.orphans + o.ambiguous) AS n
