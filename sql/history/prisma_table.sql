-- Does Prisma's migration table exist in this schema?
SELECT to_regclass(quote_ident('_prisma_migrations')) IS NOT NULL AS present
