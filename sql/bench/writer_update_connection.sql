UPDATE "Connection" SET "status" = 'active', "updatedAt" = now() WHERE "id" = %(id)s
