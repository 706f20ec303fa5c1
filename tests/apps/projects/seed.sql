-- Synthetic "projects" data, deterministic, sized and made messy by the projects_seed.* options
-- (set them as sql/demo/set_option.sql sets datahub_seed.*: set_config('projects_seed.<name>',
-- '<value>', false); an option left unset takes the default named below). Run it in one
-- transaction (its temp tables are ON COMMIT DROP), with the files under sql/ it includes put
-- in place (tenancy_runbook.db.with_includes; README.md beside this file shows how).
-- README.md lists every messy row and its outcome.
--
-- Users are numbered as in sql/demo/seed.sql:
--   1 .. users                    regular users, each OWNER of workspace ws_<n>
--     pairs (1,2), (3,4) ... up to shared_pairs: the second user's default workspace is the
--     first user's (a shared workspace); in the first `collisions` pairs both users created
--     labels with the same names, so their labels collide on (workspaceId, name)
--     the last users_without_default users have no default workspace (the OWNER rule applies)
--   then `orphans` users        no default workspace and OWNER of none (the first is ADMIN of
--                               ws_1, the others MEMBER of ws_1: neither role is OWNER)
--   then `ambiguous` users      no default workspace and OWNER of two workspaces
-- Everyone's "neighbour" is the next user (the last user's is user 1). Each user owns
-- projects_per_user projects of tasks_per_project tasks of comments_per_task comments; odd
-- comments are the project owner's, even ones the owner's neighbour's, so comments cross users
-- (an orphan comments on user `users`' tasks, user 1 on the last ambiguous user's tasks).
-- Attachment j of a user: j % 3 = 1 has no comment (it takes its uploader's workspace),
-- j % 3 = 2 is on the user's own first comment, j % 3 = 0 on the comment the user wrote on
-- the previous user's first task (so user 1's is on the last ambiguous user's task).

CREATE TEMP TABLE seed_opt ON COMMIT DROP AS
SELECT coalesce(nullif(current_setting('projects_seed.users', true), ''), '40')::int                 AS users,
       coalesce(nullif(current_setting('projects_seed.users_without_default', true), ''), '5')::int  AS users_without_default,
       coalesce(nullif(current_setting('projects_seed.shared_pairs', true), ''), '5')::int           AS shared_pairs,
       coalesce(nullif(current_setting('projects_seed.collisions', true), ''), '3')::int             AS collisions,
       coalesce(nullif(current_setting('projects_seed.orphans', true), ''), '2')::int                AS orphans,
       coalesce(nullif(current_setting('projects_seed.ambiguous', true), ''), '1')::int              AS ambiguous,
       coalesce(nullif(current_setting('projects_seed.projects_per_user', true), ''), '2')::int      AS projects_per_user,
       coalesce(nullif(current_setting('projects_seed.tasks_per_project', true), ''), '4')::int      AS tasks_per_project,
       coalesce(nullif(current_setting('projects_seed.comments_per_task', true), ''), '2')::int      AS comments_per_task,
       coalesce(nullif(current_setting('projects_seed.attachments_per_user', true), ''), '3')::int   AS attachments_per_user,
       coalesce(nullif(current_setting('projects_seed.labels_per_user', true), ''), '3')::int        AS labels_per_user,
       ARRAY['bug', 'feature', 'urgent', 'design', 'backend', 'frontend', 'docs', 'blocked'] AS label_names,
       ARRAY['application/pdf', 'image/png', 'text/csv'] AS content_types;

DO $$
DECLARE o seed_opt;
BEGIN
    SELECT * INTO o FROM seed_opt;
    IF least(o.users, o.users_without_default, o.shared_pairs, o.collisions, o.orphans, o.ambiguous,
             o.projects_per_user, o.tasks_per_project, o.comments_per_task,
             o.attachments_per_user, o.labels_per_user) < 0 THEN
        RAISE EXCEPTION 'projects_seed: every option must be >= 0';
    END IF;
    IF o.users < 1 THEN
        RAISE EXCEPTION 'projects_seed: users must be >= 1 (orphans are MEMBER of ws_1)';
    END IF;
    IF o.collisions > o.shared_pairs THEN
        RAISE EXCEPTION 'projects_seed: collisions cannot exceed shared_pairs (a collision is a shared pair)';
    END IF;
    IF 2 * o.shared_pairs + o.users_without_default > o.users THEN
        RAISE EXCEPTION 'projects_seed: 2 * shared_pairs + users_without_default must not exceed users';
    END IF;
    IF o.labels_per_user > 4 THEN
        RAISE EXCEPTION 'projects_seed: labels_per_user must be 0 to 4 (partners need disjoint names out of 8)';
    END IF;
END
$$;

CREATE TEMP TABLE seed_user ON COMMIT DROP AS
SELECT u.*,
       -- labels: partners in a colliding pair use the same names, other partners disjoint ones
       CASE u.pairing WHEN 'apart' THEN o.labels_per_user WHEN 'same' THEN 0 ELSE u.n % 8 END AS label_offset,
       -- in colliding pair i: i % 3 = 1 the second user's labels are newer, i % 3 = 2 both
       -- are equally recent (the smaller id wins), i % 3 = 0 the first user's are newer
       CASE
         WHEN u.n <= 2 * o.collisions AND u.n % 2 = 0 THEN
           CASE (u.n / 2) % 3 WHEN 1 THEN INTERVAL '1 hour' WHEN 2 THEN INTERVAL '0' ELSE INTERVAL '-1 hour' END
         ELSE INTERVAL '0'
       END AS label_shift,
       CASE WHEN u.n <= 2 * o.collisions THEN (u.n + 1) / 2 * 10 ELSE u.n * 10 END AS label_clock,
       u.n % (o.users + o.orphans + o.ambiguous) + 1 AS neighbour,
       CASE WHEN u.n = 1 THEN o.users + o.orphans + o.ambiguous ELSE u.n - 1 END AS previous
FROM seed_opt o, (
{include demo/seed_users}
) AS u;

INSERT INTO "Workspace" ("id", "name", "createdAt")
SELECT 'ws_' || n, 'Workspace ' || n, TIMESTAMP '2024-06-01' + n * INTERVAL '1 hour'
FROM seed_user WHERE kind <> 'orphan'
UNION ALL
SELECT 'ws_' || n || '_b', 'Second workspace ' || n, TIMESTAMP '2024-07-01' + n * INTERVAL '1 hour'
FROM seed_user WHERE kind = 'ambiguous';

INSERT INTO "User" ("id", "email", "defaultWorkspaceId", "createdAt")
SELECT id, 'user' || n || '@example.com', default_ws, TIMESTAMP '2024-06-01' + n * INTERVAL '1 hour'
FROM seed_user;

INSERT INTO "WorkspaceMember" ("workspaceId", "userId", "role")
{include demo/seed_memberships}
UNION ALL
SELECT 'ws_1', u.id,
       CASE WHEN u.n = o.users + 1 THEN 'ADMIN' ELSE 'MEMBER' END::"WorkspaceRole"
FROM seed_opt o, seed_user u WHERE u.kind = 'orphan';

INSERT INTO "Project" ("id", "ownerId", "name", "description", "archived", "createdAt", "updatedAt")
SELECT 'prj_' || u.n || '_' || p,
       u.id,
       'Project ' || p || ' of user ' || u.n,
       CASE WHEN p % 2 = 1 THEN 'What project ' || p || ' of user ' || u.n || ' is about' END,
       p % 3 = 0,
       TIMESTAMP '2025-01-01' + (u.n * 10 + p) * INTERVAL '1 hour',
       TIMESTAMP '2025-04-01' + (u.n * 10 + p) * INTERVAL '1 hour'
FROM seed_opt o, seed_user u, generate_series(1, o.projects_per_user) AS p;

INSERT INTO "Task" ("id", "projectId", "assigneeId", "title", "status", "dueDate", "createdAt", "updatedAt")
SELECT 'tsk_' || u.n || '_' || p || '_' || t,
       'prj_' || u.n || '_' || p,
       CASE t % 3 WHEN 0 THEN NULL
                  WHEN 1 THEN u.id
                  ELSE (SELECT nb.id FROM seed_user nb WHERE nb.n = u.neighbour) END,
       'Task ' || t || ' of project ' || p || ' of user ' || u.n,
       (ARRAY['TODO', 'IN_PROGRESS', 'DONE'])[t % 3 + 1]::"TaskStatus",
       CASE WHEN t % 2 = 0 THEN DATE '2025-09-01' + (u.n + p + t) END,
       TIMESTAMP '2025-01-02' + (u.n * 100 + p * 10 + t) * INTERVAL '1 minute',
       TIMESTAMP '2025-04-02' + (u.n * 100 + p * 10 + t) * INTERVAL '1 minute'
FROM seed_opt o, seed_user u, generate_series(1, o.projects_per_user) AS p,
     generate_series(1, o.tasks_per_project) AS t;

INSERT INTO "Comment" ("id", "taskId", "authorId", "body", "createdAt", "updatedAt")
SELECT 'cmt_' || u.n || '_' || p || '_' || t || '_' || k,
       'tsk_' || u.n || '_' || p || '_' || t,
       CASE WHEN k % 2 = 1 THEN u.id ELSE (SELECT nb.id FROM seed_user nb WHERE nb.n = u.neighbour) END,
       'Comment ' || k || ' on task ' || t || ' of project ' || p || ' of user ' || u.n,
       TIMESTAMP '2025-02-01' + ((u.n * 100 + p * 10 + t) * 10 + k) * INTERVAL '1 second',
       TIMESTAMP '2025-02-01' + ((u.n * 100 + p * 10 + t) * 10 + k) * INTERVAL '1 second'
FROM seed_opt o, seed_user u, generate_series(1, o.projects_per_user) AS p,
     generate_series(1, o.tasks_per_project) AS t, generate_series(1, o.comments_per_task) AS k;

INSERT INTO "Attachment" ("id", "commentId", "uploaderId", "fileName", "contentType", "sizeBytes",
                          "storageKey", "createdAt")
SELECT 'att_' || u.n || '_' || j,
       c."id",   -- NULL for j % 3 = 1, and when the chosen comment does not exist (small options)
       u.id,
       'file-' || u.n || '-' || j || '.' || (ARRAY['pdf', 'png', 'csv'])[j % 3 + 1],
       o.content_types[j % 3 + 1],
       1024 * (u.n * 7 + j * 13) % 5000000 + 1,
       'uploads/' || md5(u.id || ':' || j),
       TIMESTAMP '2025-03-01' + (u.n * 10 + j) * INTERVAL '1 minute'
FROM seed_opt o
CROSS JOIN seed_user u
CROSS JOIN generate_series(1, o.attachments_per_user) AS j
LEFT JOIN "Comment" c ON c."id" = CASE j % 3
                                    WHEN 1 THEN NULL
                                    WHEN 2 THEN 'cmt_' || u.n || '_1_1_1'
                                    ELSE 'cmt_' || u.previous || '_1_1_2'
                                  END;

INSERT INTO "Label" ("id", "name", "color", "createdById", "createdAt", "updatedAt")
SELECT 'lbl_' || lpad(u.n::text, 8, '0') || '_' || j,
       o.label_names[(u.label_offset + j - 1) % 8 + 1],
       '#' || substr(md5(u.id || ':' || j), 1, 6),
       u.id,
       TIMESTAMP '2025-04-01' + (u.label_clock + j) * INTERVAL '1 minute' + u.label_shift,
       TIMESTAMP '2025-05-01' + (u.label_clock + j) * INTERVAL '1 minute' + u.label_shift
FROM seed_opt o, seed_user u, generate_series(1, o.labels_per_user) AS j;
