"""Generic questions, about no corpus in particular, for calibrating similarity scores.

Multilingual models score a question against passages in its own language higher than against passages in the
other language, whatever the relevance (multilingual-e5 on the shipped corpus: about 0.83 for Chinese→Chinese
against 0.77 for Chinese→English, with a spread of only 0.02). Each model's cosines are therefore standardized per
(question language, passage language) pair, using the mean and deviation of these questions' cosines against the
indexed sentences, measured at every sync (indexer.calibrate).
"""

QUESTIONS_EN = [
    "When does this rule take effect?",
    "Which agency is responsible for enforcing the regulation?",
    "What penalties apply to companies that violate the law?",
    "Who is eligible for the program?",
    "What are the reporting requirements for employers?",
    "How much funding does the bill provide?",
    "What did the official say about the new policy?",
    "Which investments are allowed under the plan?",
    "What risks does the department warn about?",
    "How is the term defined in the statute?",
    "What changes were made compared with the previous version?",
    "Who signed the order and when?",
    "What deadline does the agency have to issue guidance?",
    "How will consumers be protected?",
    "What is the purpose of the legislation?",
    "Does the guidance replace an earlier statement?",
    "What percentage of assets can be invested?",
    "Which committee approved the bill?",
    "What do critics say about the proposal?",
    "How many people are affected by the change?",
    "What disclosures must issuers publish?",
    "Is there an exemption for small firms?",
    "What role do fiduciaries play under the act?",
    "How does the market react to the announcement?",
]

QUESTIONS_ZH = [
    "这项规定什么时候生效?",
    "哪个机构负责执行该法规?",
    "违反法律的公司会受到什么处罚?",
    "谁有资格参加这个项目?",
    "雇主需要履行哪些报告义务?",
    "该法案提供了多少资金?",
    "官员对新政策发表了什么看法?",
    "该计划允许哪些投资?",
    "监管部门提醒了哪些风险?",
    "法律中这个术语是如何定义的?",
    "与上一版本相比做了哪些修改?",
    "这项命令由谁签署,何时签署?",
    "监管机构需要在什么期限内发布指引?",
    "如何保护消费者的权益?",
    "这部立法的目的是什么?",
    "新的指引是否取代了之前的声明?",
    "最多可以将多少比例的资产用于投资?",
    "哪个委员会通过了该法案?",
    "批评者对这项提案有什么意见?",
    "这一变化影响了多少人?",
    "发行方必须公开哪些信息?",
    "小型企业是否有豁免?",
    "受托人在该法案下承担什么责任?",
    "市场对这一消息有何反应?",
]
