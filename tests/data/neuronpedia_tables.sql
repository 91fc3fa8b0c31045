-- Neuronpedia's tables that an explanation import writes, as its migrations create them (hijohnnylin/neuronpedia,
-- apps/webapp/prisma/migrations/*, commit ebb8426f, 2026-08-20; no later migration alters them). A test fixture:
-- tests/test_exports.py checks invert_fast's rows against these columns, types, NOT NULLs and DEFAULTs.
-- Foreign keys (from the same migrations): Explanation (modelId, layer, index) -> Neuron, authorId -> User,
-- typeName -> ExplanationType, explanationModelName -> ExplanationModelType; ExplanationScore explanationId ->
-- Explanation, initiatedByUserId -> User, explanationScoreTypeName -> ExplanationScoreType,
-- explanationScoreModelName -> ExplanationScoreModel; ExplanationType / ExplanationScoreType creatorId -> User.
CREATE TABLE "Explanation" (
    "id" TEXT NOT NULL,
    "modelId" TEXT NOT NULL,
    "layer" TEXT NOT NULL,
    "index" TEXT NOT NULL,
    "embedding" vector(256),
    "description" TEXT NOT NULL,
    "authorId" TEXT NOT NULL,
    "triggeredByUserId" TEXT,
    "notes" TEXT,
    "scoreV1" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "scoreV2" DOUBLE PRECISION,
    "umap_x" DOUBLE PRECISION DEFAULT 0,
    "umap_y" DOUBLE PRECISION DEFAULT 0,
    "umap_cluster" INTEGER DEFAULT 0,
    "umap_log_feature_sparsity" DOUBLE PRECISION DEFAULT 0,
    "typeName" TEXT,
    "explanationModelName" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Explanation_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "ExplanationScore" (
    "id" TEXT NOT NULL,
    "initiatedByUserId" TEXT NOT NULL,
    "value" DOUBLE PRECISION NOT NULL,
    "explanationId" TEXT NOT NULL,
    "explanationScoreTypeName" TEXT NOT NULL,
    "explanationScoreModelName" TEXT NOT NULL,
    "jsonDetails" TEXT NOT NULL DEFAULT '',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ExplanationScore_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "ExplanationType" (
    "name" TEXT NOT NULL,
    "displayName" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "featured" BOOLEAN NOT NULL DEFAULT true,
    "isAttention" BOOLEAN NOT NULL DEFAULT false,
    "explainerModelSettingsId" TEXT,
    "settings" TEXT,
    "url" TEXT,
    "creatorName" TEXT NOT NULL,
    "creatorId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ExplanationType_pkey" PRIMARY KEY ("name")
);
CREATE TABLE "ExplanationModelType" (
    "name" TEXT NOT NULL,
    "displayName" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "featured" BOOLEAN NOT NULL DEFAULT true,
    "openRouterModelId" TEXT,
    "url" TEXT,
    "creatorName" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ExplanationModelType_pkey" PRIMARY KEY ("name")
);
CREATE TABLE "ExplanationScoreType" (
    "name" TEXT NOT NULL,
    "displayName" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "featured" BOOLEAN NOT NULL DEFAULT true,
    "isAttention" BOOLEAN NOT NULL DEFAULT false,
    "scoreDescription" TEXT,
    "scorerModel" TEXT,
    "settings" TEXT,
    "url" TEXT,
    "creatorName" TEXT NOT NULL,
    "creatorId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ExplanationScoreType_pkey" PRIMARY KEY ("name")
);
CREATE TABLE "ExplanationScoreModel" (
    "name" TEXT NOT NULL,
    "displayName" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "featured" BOOLEAN NOT NULL DEFAULT true,
    "openRouterModelId" TEXT,
    "url" TEXT,
    "creatorName" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ExplanationScoreModel_pkey" PRIMARY KEY ("name")
);
